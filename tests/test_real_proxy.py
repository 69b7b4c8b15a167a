"""Through the real jupyter-server-proxy, as on JupyterHub and Binder, in both
of its modes: which requests stream, which arrive whole at the end.

The expectations are what the proxy does (4.4 and later): it passes a
response on as it comes only when the request's ``Accept`` header is exactly
``text/event-stream``, whatever the response's type; every other request is
collected whole first.
"""

import re
import time
from urllib.parse import urlsplit

import pytest
import requests
import simple_websocket

from livestream import mjpeg
from livestream.sources import sqrt_demo
from livestream.techniques import TECHNIQUES
from livestream.tools.jupyter_proxy import own_server
from livestream.tools.wire import chunk_times, moments
from testing_support import Recorder, pictures, stream_url_in

pytestmark = pytest.mark.proxy

COUNT, INTERVAL = 20, 0.1
QUERY = f"count={COUNT}&interval={INTERVAL}"
# a buffered stream needs fewer messages to show it arrives in one piece
SHORT = f"count=5&interval={INTERVAL}"
STREAMS = [
    "/stream/text",
    "/stream/ndjson",
    "/stream/html",
    "/stream/sse",
    "/stream/htmx",
]
STREAMING = "text/event-stream"
# what fetch() and XMLHttpRequest send by default, and requests and curl
ANY = "*/*"
# near misses: the proxy compares the whole header, case and all
BUFFERED = [
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # an iframe
    "text/event-stream, */*",
    "Text/Event-Stream",
    "text/event-stream;q=1",
    # what htmx 4's hx-sse asks for (it reads with fetch()); htmx 2's SSE
    # extension, which /htmx uses, opens an EventSource: text/event-stream
    pytest.param("text/html, text/event-stream", id="htmx-4-hx-sse"),
]


def through(server, jupyter, path, accept):
    """Request ``path`` through the proxy with ``accept``; status, body, times."""
    headers = {**jupyter.headers, "Accept": accept}
    return chunk_times(f"{server.proxy_url}{path}", headers)


@pytest.mark.parametrize("path", STREAMS)
def test_a_request_accepting_only_event_streams_streams(
    behind_jupyter, jupyter_service, path
):
    server = behind_jupyter()
    status, body, times = through(server, jupyter_service, f"{path}?{QUERY}", STREAMING)
    assert status == 200
    assert moments(times) >= COUNT // 2, times
    # the same body as from the server itself
    assert (
        body
        == requests.get(
            f"{server.url}{path}?count={COUNT}&interval=0", timeout=10
        ).content
    )


@pytest.mark.parametrize("path", STREAMS)
def test_any_other_request_arrives_whole_at_the_end(
    behind_jupyter, jupyter_service, path
):
    server = behind_jupyter()
    status, body, times = through(server, jupyter_service, f"{path}?{SHORT}", ANY)
    assert status == 200
    assert moments(times) == 1, times
    assert times[0] >= 4 * INTERVAL
    assert (
        body
        == requests.get(f"{server.url}{path}?count=5&interval=0", timeout=10).content
    )


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
@pytest.mark.parametrize("accept", [STREAMING, ANY])
def test_a_streamed_answer_to_a_post_follows_the_same_rule(
    behind_jupyter, jupyter_service, accept
):
    def answer(prompt):
        for i in range(COUNT):
            if i:
                time.sleep(INTERVAL)
            yield f"word{i} "

    server = behind_jupyter(answer=answer)
    status, body, times = chunk_times(
        f"{server.proxy_url}/stream/answer",
        {**jupyter_service.headers, "Accept": accept},
        json={"prompt": "hello"},
    )
    assert status == 200
    assert body.decode().splitlines() == [f'"word{i} "' for i in range(COUNT)]
    if accept == STREAMING:
        assert moments(times) >= COUNT // 2, times
    else:
        assert moments(times) == 1, times


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
@pytest.mark.parametrize("accept", BUFFERED)
def test_only_the_exact_header_streams(behind_jupyter, jupyter_service, accept):
    server = behind_jupyter()
    _, _, times = through(server, jupyter_service, f"/stream/ndjson?{SHORT}", accept)
    assert moments(times) == 1, times


@pytest.mark.parametrize("technique", TECHNIQUES, ids=lambda t: t.name)
def test_every_page_works_through_the_proxy(behind_jupyter, jupyter_service, technique):
    server = behind_jupyter()
    prefix = urlsplit(server.proxy_url).path
    sep = "&" if "?" in technique.path else "?"
    page = requests.get(
        f"{server.proxy_url}{technique.path}{sep}count=2&interval=0",
        headers=jupyter_service.headers,
        timeout=10,
    )
    assert page.status_code == 200
    # the page's links and its stream go through the proxy too
    stream = stream_url_in(page.text)
    # the WebSocket's address is whole (ws://host/...); the others are paths
    assert urlsplit(stream).path == f"{prefix}{technique.stream_path}"
    origin = jupyter_service.url[: -len(urlsplit(jupyter_service.url).path)]
    streams = [] if technique.name == "ws" else [stream]
    # the page's scripts come from the app too (htmx's: vendored, no CDN)
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert all(script.startswith(f"{prefix}/static/") for script in scripts)
    for url in [*streams, *scripts, f"{prefix}/static/style.css", f"{prefix}/?count=2"]:
        answer = requests.get(origin + url, headers=jupyter_service.headers, timeout=10)
        assert answer.status_code == 200, url


def test_last_event_id_goes_through_the_proxy(behind_jupyter, jupyter_service):
    server = behind_jupyter()
    response = requests.get(
        f"{server.proxy_url}/stream/sse?count=3&interval=0",
        headers={
            **jupyter_service.headers,
            "Accept": STREAMING,
            "Last-Event-ID": "1",
        },
        timeout=10,
    )
    assert "id: 2\ndata: 1.4142135623730951\n" in response.text
    assert "id: 1\n" not in response.text


def test_a_stream_that_breaks_off_is_an_error_page_when_buffered(
    behind_jupyter, jupyter_service
):
    # the proxy answers a buffered request whose stream broke off with its own
    # HTML error page, status 599: the same status as after its 300 s limit
    recorder = Recorder(["a", "b"], interval=0.1)

    def breaking(count, interval):
        yield from recorder(count, interval)
        raise ValueError("sensor unplugged")

    server = behind_jupyter(breaking)
    status, body, _ = through(server, jupyter_service, "/stream/ndjson", ANY)
    assert status == 599
    assert body.lstrip().lower().startswith(b"<!doctype html>")
    # streamed, the response keeps its 200 and the proxy adds a line of its own
    # that ends it mid-line
    status, body, _ = through(server, jupyter_service, "/stream/ndjson", STREAMING)
    assert status == 200
    assert body.startswith(b'"a"\n"b"\n')
    assert not body.endswith(b"\n")


def test_a_kernel_finds_the_jupyter_server_it_runs_under(jupyter_service, monkeypatch):
    # a kernel's JPY_PARENT_PID is its server's process; the server lists
    # itself in its runtime folder
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", jupyter_service.runtime_dir)
    monkeypatch.setenv("JPY_PARENT_PID", str(jupyter_service.process.pid))
    own = own_server()
    assert own.url == jupyter_service.url
    assert own.public_url == "/user/learner"
    assert own.proxy_prefix() == "/user/learner/proxy/{port}"
    own.stop()  # not its own to stop
    assert jupyter_service.process.poll() is None
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    assert own_server() is None


def test_a_websocket_streams_through_the_proxy(behind_jupyter, jupyter_service):
    # the proxy relays a WebSocket frame by frame, whatever the headers; but
    # it does not pass the close code on: the client sees 1005 (no code), not
    # the server's 1000. The empty binary message before it gets through, and
    # is what tells a page the stream is done
    server = behind_jupyter()
    url = server.proxy_url.replace("http://", "ws://", 1) + f"/stream/ws?{QUERY}"
    ws = simple_websocket.Client.connect(jupyter_service.with_token(url))
    start, times, ends = time.monotonic(), [], []
    try:
        while (message := ws.receive(timeout=10)) is not None:
            if isinstance(message, bytes):
                ends.append(message)
            else:
                times.append(time.monotonic() - start)
    except simple_websocket.ConnectionClosed as closed:
        assert closed.reason == 1005
    assert ends == [b""]
    assert len(times) == COUNT
    assert moments(times) >= COUNT // 2, times


# what Chromium 156's <img> asks for: a picture page cannot choose its header
IMAGE = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def test_an_img_gets_the_mjpeg_stream_whole_at_the_end(behind_jupyter, jupyter_service):
    # the proxy collects a multipart/x-mixed-replace response like any other
    # that is not asked for as an event stream: the <img> gets every frame at
    # once after the last is drawn, and shows only the last, Done
    server = behind_jupyter()
    status, body, times = through(
        server, jupyter_service, f"/stream/mjpeg?{SHORT}", IMAGE
    )
    assert status == 200
    assert moments(times) == 1, times
    assert times[0] >= 4 * INTERVAL
    assert mjpeg.parts_of(body) == pictures(list(sqrt_demo(5, 0)))


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
def test_the_mjpeg_stream_streams_only_when_asked_as_an_event_stream(
    behind_jupyter, jupyter_service
):
    # the rule is the request's Accept, whatever the response's type: asked
    # for text/event-stream, the same multipart body passes on frame by frame,
    # with its type; but an <img> never asks that way
    server = behind_jupyter()
    url = f"{server.proxy_url}/stream/mjpeg?{QUERY}"
    headers = {**jupyter_service.headers, "Accept": STREAMING}
    with requests.get(url, headers=headers, stream=True, timeout=10) as response:
        assert response.headers["Content-Type"] == mjpeg.MIMETYPE
    status, body, times = through(
        server, jupyter_service, f"/stream/mjpeg?{QUERY}", STREAMING
    )
    assert status == 200
    assert moments(times) >= COUNT // 2, times
    assert len(mjpeg.parts_of(body)) == COUNT + 1
