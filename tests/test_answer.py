"""The streamed answer: the body checked, the learner's generator plugged
in, the answer streamed as NDJSON, and a client that leaves stops it."""

import json

import pytest
import requests

from livestream import create_app
from livestream.answer import made_up
from testing_support import Recorder, wait_until

JSON = "application/json"


def pieces(response):
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_the_made_up_answer_is_deterministic():
    assert "".join(made_up("two words", interval=0)) == (
        "You asked: two words — backwards, that is: words two (a made-up answer)."
    )


def test_the_answer_streams_as_ndjson(client):
    response = client.post("/stream/answer", json={"prompt": "hi"})
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert response.is_streamed
    assert "".join(pieces(response)).startswith("You asked: hi")


def test_the_learners_own_generator():
    def shout(prompt):
        yield from prompt.upper()

    app = create_app(answer=shout, TESTING=True)
    response = app.test_client().post("/stream/answer", json={"prompt": "a\nb<"})
    assert pieces(response) == ["A", "\n", "B", "<"]


def test_answer_must_be_callable():
    with pytest.raises(TypeError, match="answer must be a callable"):
        create_app(answer="no")


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"not json", 400, 'the body must be JSON like {"prompt": "..."}: '),
        (b"\xff", 400, 'the body must be JSON like {"prompt": "..."}: '),
        (b"", 400, 'the body must be JSON like {"prompt": "..."}: '),
        (b"[1]", 400, 'prompt is missing: send {"prompt": "..."}'),
        (b'{"question": "hi"}', 400, 'prompt is missing: send {"prompt": "..."}'),
        (b'{"prompt": 3}', 400, "prompt must be a string, got '3'"),
        (b'{"prompt": null}', 400, "prompt must be a string, got 'null'"),
        (b"x" * 16_385, 413, "the request body must be at most 16384 bytes"),
    ],
)
def test_a_bad_body_is_refused_in_one_line(client, body, status, text):
    response = client.post("/stream/answer", data=body, content_type=JSON)
    assert response.status_code == status
    said = response.get_data(as_text=True)
    assert said.count("\n") == 1
    assert said.startswith(text)


def test_the_limit_holds_without_a_content_length(live):
    # a chunked body: no Content-Length to check up front
    server = live()
    chunks = (b"x" * 1000 for _ in range(20))
    response = requests.post(
        server.url + "/stream/answer",
        data=chunks,
        headers={"Content-Type": JSON},
        timeout=10,
    )
    assert response.status_code == 413


def test_only_post(client):
    assert client.get("/stream/answer").status_code == 405


def test_a_client_that_leaves_stops_the_answer(live):
    recorder = Recorder(forever=True, interval=0.2)
    server = live(app=create_app(answer=lambda prompt: recorder(0, 0), TESTING=True))
    with requests.post(
        server.url + "/stream/answer", json={"prompt": "go"}, stream=True, timeout=10
    ) as response:
        # the iterator is kept: urllib3 closes the connection when one that
        # has not reached the end is dropped
        lines = response.iter_lines()
        assert next(lines) == b'"tick 0"'
        assert server.active_streams == 1
    assert wait_until(lambda: server.active_streams == 0, 1.2)
    assert recorder.closed.wait(1.2)


def test_the_answer_holds_no_more_than_the_configured_buffer():
    # a client that reads one line and then nothing: the generator may run
    # ahead by STREAM_BUFFER_BYTES, here one piece, not by the 4 MB default
    made = []

    def fast(prompt):
        for n in range(5000):
            made.append(n)
            yield "x" * 1000

    app = create_app(answer=fast, STREAM_BUFFER_BYTES=1, TESTING=True)
    response = app.test_client().post(
        "/stream/answer", json={"prompt": "hi"}, buffered=False
    )
    body = iter(response.response)
    assert next(body)
    # the generator has done what it may once it waits; give it the time it
    # would need to run far past that
    assert not wait_until(lambda: len(made) > 10, timeout=1.0)
    assert 1 <= len(made) <= 10
    response.close()
