"""Hostile request bodies and HTTP/1.0 clients, on every server the app runs
on: serve()'s werkzeug server and gunicorn's gthread and gevent workers.

A body that nests deep, or whose chunked encoding is broken, gets a one-line
400 rather than a 500; a chunk extension, which HTTP/1.1 allows, is read past;
an HTTP/1.0 client gets a body that ends where the connection closes, since
HTTP/1.0 has no chunked encoding."""

import io
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from livestream import create_app
from livestream.answer import MAX_DEPTH, nests_deeper
from livestream.httpd import BadChunking, Dechunked
from livestream.tools.services import start_gunicorn

SERVERS = ["serve", "gthread", "gevent"]


@pytest.fixture(scope="module")
def gunicorn_kinds():
    """gunicorn on each worker class, started when first asked for, once a
    module: ``gunicorn_kinds("gthread")`` is its Service."""
    started = {}

    def get(worker_class):
        if worker_class not in started:
            started[worker_class] = start_gunicorn(
                workers=1, connections=4, worker_class=worker_class
            )
        return started[worker_class]

    yield get
    for service in started.values():
        service.stop()


@pytest.fixture(params=SERVERS)
def url(request, live, gunicorn_kinds):
    """The address of the app on each server in turn."""
    if request.param == "serve":
        return live().url
    return gunicorn_kinds(request.param).url


def exchange(url, head, body=b""):
    """Send a request as raw bytes; the whole answer, as ``(head, body)``."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), 10) as conn:
        conn.sendall(head.replace(b"HOST", address.netloc.encode()) + body)
        answer = b""
        while data := conn.recv(65536):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def post_answer(url, body, framing=None):
    """POST ``body`` to /stream/answer, with a Content-Length or, given
    ``framing``, that Transfer-Encoding and ``body`` framed as it is."""
    length = b"Content-Length: %d\r\n" % len(body)
    head = (
        b"POST /stream/answer HTTP/1.1\r\nHost: HOST\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        + (b"Transfer-Encoding: " + framing + b"\r\n" if framing else length)
        + b"\r\n"
    )
    head, body = exchange(url, head, body)
    return int(head.split()[1]), head, body


def unchunked(body):
    """A chunked response body's data."""
    data = b""
    while True:
        size, _, body = body.partition(b"\r\n")
        size = int(size, 16)
        if not size:
            return data
        data, body = data + body[:size], body[size + 2 :]


def nested(depth):
    """A prompt beside arrays nested ``depth`` deep in all."""
    return b'{"prompt": "hi", "more": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# nesting counted without recursing


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b'{"prompt": "hi"}', 1),
        (nested(MAX_DEPTH), MAX_DEPTH),
        # brackets in strings are text, escaped quotes do not end a string
        (b'{"prompt": "[[[[{{{{"}', 1),
        (b'{"prompt": "\\"[[[[\\"", "a": [[]]}', 3),
        (b'{"prompt": "\\\\", "a": [[]]}', 3),
        # closing brackets bring the count down again
        (b"[[[]]]" * 20 + b'{"a": [[]]}', 3),
    ],
)
def test_nesting_is_counted_outside_strings(text, depth):
    assert not nests_deeper(text, depth)
    assert nests_deeper(text, depth - 1)


def test_a_deep_body_is_refused_naming_the_limit(client):
    for body in (b"[" * 10_000, nested(MAX_DEPTH + 1)):
        response = client.post(
            "/stream/answer", data=body, content_type="application/json"
        )
        assert response.status_code == 400
        assert response.get_data(as_text=True) == (
            f"the body nests deeper than {MAX_DEPTH} levels (ANSWER_MAX_DEPTH)\n"
        )


def test_the_depth_limit_is_a_setting():
    app = create_app(ANSWER_MAX_DEPTH=3, TESTING=True)
    post = app.test_client().post
    assert post("/stream/answer", data=nested(3), content_type="application/json")
    response = post("/stream/answer", data=nested(4), content_type="application/json")
    assert response.status_code == 400
    assert "deeper than 3 levels (ANSWER_MAX_DEPTH)" in response.get_data(as_text=True)
    with pytest.raises(ValueError, match="ANSWER_MAX_DEPTH must be"):
        create_app(ANSWER_MAX_DEPTH=0)


def test_a_body_in_utf_16_cannot_recurse_either(client):
    # the count is sure for UTF-8 only: in UTF-16, "\u2200" holds the byte of
    # a quote, so the brackets after it look like a string's text. json.loads
    # reads UTF-16 too, and its RecursionError is the same refusal
    text = '["\u2200", "", ' + "[" * 2000 + "]" * 2000 + "]"
    body = text.encode("utf-16")
    assert not nests_deeper(body, MAX_DEPTH)
    response = client.post("/stream/answer", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nests deeper than 32 levels" in response.get_data(as_text=True)


# the chunked body reader behind serve()


def dechunked(raw):
    return Dechunked(io.BufferedReader(io.BytesIO(raw))).read()


def test_chunks_with_extensions_and_trailers_are_read():
    raw = b"5;name=value\r\nhello\r\n6 ; a=1;b\r\n world\r\n0;end\r\nX-Sum: 1\r\n\r\n"
    assert dechunked(raw) == b"hello world"


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", "not a hexadecimal number: b'zz'"),
        (b"+5\r\nhello\r\n0\r\n\r\n", "not a hexadecimal number"),
        (b"0x5\r\nhello\r\n0\r\n\r\n", "not a hexadecimal number"),
        (b"5\r\nhelloXX0\r\n\r\n", "does not end with CRLF"),
        (b"5\nhello\r\n0\r\n\r\n", "size line does not end with CRLF"),
        (b"5;a=\rb\r\nhello\r\n0\r\n\r\n", "control character"),
        (b"9\r\nhello", "ends inside a chunk"),
        (b"5\r\nhello\r\n0\r\nX: 1\r\n", "trailer section does not end"),
        (b"1" * 5000 + b"\r\n", "longer than 4096 bytes"),
    ],
)
def test_broken_chunking_is_an_oserror_that_says_why(raw, said):
    with pytest.raises(BadChunking, match=said):
        dechunked(raw)


# on every server


def test_a_deep_body_gets_400_on_every_server(url):
    status, _, body = post_answer(url, b"[" * 5000)
    assert status == 400
    assert body == b"the body nests deeper than 32 levels (ANSWER_MAX_DEPTH)\n"


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # a size that is no number
        b"5\r\nhelloXX0\r\n\r\n",  # data that runs past its size
    ],
)
def test_broken_chunking_gets_400_on_every_server(url, chunks):
    status, _, body = post_answer(url, chunks, framing=b"chunked")
    assert status == 400
    assert body.startswith(b"the request body could not be read: ")
    assert body.count(b"\n") == 1


def test_a_chunk_extension_is_read_past_on_every_server(url):
    prompt = b'{"prompt": "hi"}'
    chunks = b"%x;name=value\r\n%s\r\n0\r\n\r\n" % (len(prompt), prompt)
    status, _, body = post_answer(url, chunks, framing=b"chunked")
    assert status == 200
    pieces = [json.loads(line) for line in unchunked(body).splitlines()]
    assert "".join(pieces).startswith("You asked: hi")


def test_http_1_0_gets_a_body_that_ends_with_the_connection(url):
    head, body = exchange(
        url, b"GET /stream/text?count=3&interval=0 HTTP/1.0\r\nHost: HOST\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.0 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"0.0\n1.0\n1.4142135623730951\n"


def test_http_1_1_still_gets_chunks(url):
    head, body = exchange(
        url,
        b"GET /stream/text?count=3&interval=0 HTTP/1.1\r\nHost: HOST\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in head.lower()
    assert unchunked(body) == b"0.0\n1.0\n1.4142135623730951\n"


@pytest.fixture(params=SERVERS)
def impatient_url(request, live, monkeypatch):
    """The app, waiting half a second for a body, on each server in turn."""
    monkeypatch.setenv("LIVESTREAM_ANSWER_BODY_TIMEOUT", "0.5")
    if request.param == "serve":
        yield live().url
        return
    service = start_gunicorn(workers=1, connections=4, worker_class=request.param)
    yield service.url
    service.stop()


def test_a_body_that_stops_arriving_gets_408_on_every_server(impatient_url):
    # the head promises 100 bytes; ten come, then nothing
    head = (
        b"POST /stream/answer HTTP/1.1\r\nHost: HOST\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    began = time.monotonic()
    head, body = exchange(impatient_url, head, b'{"prompt":')
    assert time.monotonic() - began < 5
    assert head.split()[1] == b"408"
    assert b"ANSWER_BODY_TIMEOUT" in body


def test_the_body_timeout_is_a_setting():
    with pytest.raises(ValueError, match="ANSWER_BODY_TIMEOUT"):
        create_app(ANSWER_BODY_TIMEOUT=0)
