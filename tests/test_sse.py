import pytest

from livestream import create_app
from livestream.framing import sse_event
from livestream.sources import run_source, sqrt_demo, takes_start
from testing_support import Recorder, parse_sse


def sse(app, headers=None, query=""):
    response = app.test_client().get(f"/stream/sse?{query}", headers=headers or {})
    return response, parse_sse(response.get_data(as_text=True))


def test_each_message_has_an_id_and_the_stream_an_end():
    app = create_app(STREAM_COUNT=3, STREAM_INTERVAL=0, SSE_RETRY_MS=1500)
    response, stream = sse(app)
    assert response.mimetype == "text/event-stream"
    assert stream["retry"] == 1500
    assert stream["events"] == [
        {"id": "0", "data": "0.0"},
        {"id": "1", "data": "1.0"},
        {"id": "2", "data": "1.4142135623730951"},
        {"event": "end", "data": ""},
    ]


def test_a_message_with_newlines_is_several_data_lines():
    assert sse_event("one\ntwo", 7) == "id: 7\ndata: one\ndata: two\n\n"
    app = create_app(lambda count, interval: ["one\ntwo\n\nfour", "", {"a": 1}])
    _, stream = sse(app)
    assert [event["data"] for event in stream["events"]] == [
        "one\ntwo\n\nfour",
        "",
        '{"a": 1}',
        "",
    ]


def resumable(count, interval, start=0):
    yield from (f"message {i}" for i in range(start, count))


def from_the_top(count, interval):
    yield from (f"message {i}" for i in range(count))


@pytest.mark.parametrize("source", [resumable, from_the_top])
def test_last_event_id_resumes_after_it(source):
    _, stream = sse(create_app(source), {"Last-Event-ID": "2"}, "count=5")
    assert stream["events"] == [
        {"id": "3", "data": "message 3"},
        {"id": "4", "data": "message 4"},
        {"event": "end", "data": ""},
    ]


def test_the_last_id_of_the_stream_resumes_to_just_the_end():
    _, stream = sse(create_app(resumable), {"Last-Event-ID": "4"}, "count=5")
    assert stream["events"] == [{"event": "end", "data": ""}]


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_last_event_id_starts_from_0(value):
    _, stream = sse(create_app(resumable), {"Last-Event-ID": value}, "count=2")
    assert [event.get("id") for event in stream["events"]] == ["0", "1", None]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "5", "99999999999999999999"])
def test_a_bad_last_event_id_gets_400(value):
    response, _ = sse(create_app(resumable), {"Last-Event-ID": value}, "count=5")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.startswith("Last-Event-ID must be a message id from 0 to 4")
    assert text.count("\n") == 1


def test_a_long_gap_gets_keepalive_comments():
    source = Recorder(["first", "second"], interval=0.35)
    app = create_app(source, SSE_KEEPALIVE=0.1)
    _, stream = sse(app)
    assert [event["data"] for event in stream["events"]] == ["first", "second", ""]
    assert stream["comments"] >= 2
    assert source.closed.is_set()


def test_run_source_starts_part_way():
    assert list(run_source(sqrt_demo, 4, 0, start=2)) == [2**0.5, 3**0.5]
    assert list(run_source(from_the_top, 4, 0, start=3)) == ["message 3"]
    assert takes_start(resumable)
    assert takes_start(lambda count, interval, **options: [])
    assert not takes_start(from_the_top)
    assert not takes_start(print)


def test_skipping_closes_the_source():
    recorder = Recorder(["a", "b", "c"])
    skipped = run_source(recorder, 3, 0, start=1)
    assert next(skipped) == "b"
    skipped.close()
    assert recorder.closed.is_set()
