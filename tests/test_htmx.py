"""The htmx page's stream: SSE whose data are HTML, with the same ids, retry,
resume and end as /stream/sse, each message escaped into its list item, and
the readout (#latest, #count, the log's size) kept by out-of-band swaps."""

import re

import pytest

from livestream import create_app
from livestream.framing import htmx_end, htmx_ended, htmx_event
from testing_support import parse_sse, read_htmx, stream_url_in

HOSTILE = "<img src=x onerror=alert(1)></li><script>alert(2)</script>"
DROP = "delete:#output > .message:first-child"


def messages_app(*messages, **config):
    return create_app(lambda count, interval: iter(messages), TESTING=True, **config)


def htmx(app, query="", headers=None):
    response = app.test_client().get(f"/stream/htmx?{query}", headers=headers or {})
    assert response.status_code == 200, response.text
    return response.get_data(as_text=True)


def test_each_message_is_an_escaped_item_with_the_readout():
    body = htmx(messages_app(HOSTILE, {"k": "<b>"}, "a\r\nb"))
    assert "<img" not in body and "<script" not in body and "<b>" not in body
    assert read_htmx(body) == ([HOSTILE, '{"k": "<b>"}', "a\r\nb"], "Done")
    events = parse_sse(body)["events"]
    assert [event.get("id") for event in events] == ["0", "1", "2", None]
    assert events[-1]["event"] == "end"


def test_it_starts_with_retry_like_the_sse_stream():
    body = htmx(messages_app("a", SSE_RETRY_MS=1500))
    assert body.startswith("retry: 1500\n")


def test_the_log_keeps_the_pages_newest():
    # once the log holds keep items, each new one removes the oldest
    body = htmx(messages_app(*"abcde"), "keep=3")
    drops = [DROP in event["data"] for event in parse_sse(body)["events"]]
    assert drops == [False, False, False, True, True, False]


def test_a_resumed_stream_counts_on():
    body = htmx(messages_app(*"abcde"), "count=5", {"Last-Event-ID": "2"})
    counts = re.findall(r'innerHTML:#count">(\d+)<', body)
    assert read_htmx(body) == (["d", "e"], "Done")
    assert counts == ["4", "5"]


def test_a_failure_ends_it_with_the_error():
    def failing(count, interval):
        yield "a"
        raise ValueError("sensor <unplugged>")

    body = htmx(create_app(failing, TESTING=True))
    messages, ended = read_htmx(body)
    assert messages == ["a"]
    assert ended == "Error: the source failed: ValueError: sensor <unplugged>"
    # the end event (sse-close) ends it, so the page closes its EventSource
    assert parse_sse(body)["events"][-1]["event"] == "end"


def test_what_html_cannot_carry_in_an_error_is_replaced():
    # an error's text can hold anything: the end event must still go out
    assert "Error: a \ufffd b ?" in htmx_end("a \0 b \ud800")
    with pytest.raises(ValueError, match="NUL"):
        htmx_event("a \0 b", 0, 10)


def test_the_page_hands_its_query_and_keep_to_its_stream(client):
    page = client.get("/htmx?count=3&interval=0.01&keep=7")
    assert page.status_code == 200
    url = stream_url_in(page.text)
    assert url == "/stream/htmx?count=3&interval=0.01&keep=7"
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("keep", ["0", "x", "1000001"])
def test_a_bad_keep_gets_400(client, keep):
    response = client.get(f"/stream/htmx?keep={keep}")
    assert response.status_code == 400
    assert response.text.startswith("keep must be an integer")


def test_stop_answers_with_the_end_of_the_readout(client):
    response = client.get("/htmx/stop")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.text == htmx_ended("Stopped")
    assert '>Stopped</span><button id="stop" type="button" disabled' in response.text


def test_the_page_has_no_script_of_ours(client):
    page = client.get("/htmx").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    # only the two vendored files and the readout's timeline (it records
    # when items arrive, it reads no stream), no handler of ours in an attribute
    assert [(attrs.strip(), body) for attrs, body in scripts] == [
        ('src="/static/vendor/htmx.min.js"', ""),
        ('src="/static/vendor/sse.js"', ""),
        ('src="/static/timeline.js"', ""),
    ]
    assert not re.search(r"\son\w+=|hx-on", page)
    assert 'sse-close="end"' in page
