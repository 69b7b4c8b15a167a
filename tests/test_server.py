import re
import socket
import time

import pytest
import requests

from livestream import LiveServer, create_app, serve
from testing_support import Recorder


def read_line(response):
    return next(response.iter_lines(chunk_size=None))


def test_serve_answers(live):
    server = live()
    assert isinstance(server, LiveServer)
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0
    response = requests.get(server.url + "/stream/ndjson?count=2&interval=0")
    assert response.status_code == 200
    assert response.text == "0.0\n1.0\n"


def test_streams_are_chunked_over_http_11(live):
    # the threaded server speaks HTTP/1.1, the only way a body can be streamed
    # without knowing its length
    server = live()
    response = requests.get(server.url + "/stream/text?count=2&interval=0")
    assert response.raw.version == 11
    assert response.headers["Transfer-Encoding"] == "chunked"


def test_a_stream_arrives_message_by_message(live):
    recorder = Recorder(["first", "second"], interval=30)
    server = live(recorder)
    with requests.get(server.url + "/stream/text", stream=True, timeout=5) as r:
        # the second message is 30 s away: the first must arrive on its own
        assert read_line(r) == b"first"


def read_to_end(response):
    """The rest of a streamed body, however the server ended it."""
    rest = b""
    try:
        for chunk in response.iter_content(chunk_size=None):
            rest += chunk
    except requests.exceptions.ChunkedEncodingError:
        pass  # cut off without the last chunk: ended all the same
    return rest


def test_iter_lines_gets_each_line_of_a_chunked_stream(live):
    # notebook 01 says so: on a chunked body urllib3 hands over each chunk
    # without waiting to fill iter_lines' 512 bytes
    server = live(Recorder(["first", "second"], interval=30))
    with requests.get(server.url + "/stream/text", stream=True, timeout=5) as r:
        assert next(r.iter_lines()) == b"first"


def test_stop_ends_open_streams(live):
    interval = 2
    recorder = Recorder(forever=True, interval=interval)
    server = live(recorder)
    # a read timeout shorter than the interval: a stream that goes on fails
    with requests.get(server.url + "/stream/text", stream=True, timeout=1.5) as r:
        assert read_line(r) == b"tick 0"
        began = time.monotonic()
        server.stop()
        # stop() must not wait for the stream: the spec allows it 1 s
        assert time.monotonic() - began < 1.0
        assert not server.running
        # the client sees its stream end before the next tick is due
        assert read_to_end(r) == b""
    # the source is closed at its next message, one interval later
    assert recorder.closed.wait(interval + 1)


def test_stop_twice(live):
    server = live()
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/xhr", timeout=2)


def test_context_manager():
    with serve(create_app()) as server:
        assert requests.get(server.url + "/xhr").status_code == 200
    assert not server.running


def test_serving_again_on_a_port_replaces_the_server(live):
    first = live(lambda count, interval: iter(["first app"]))
    second = live(lambda count, interval: iter(["second app"]), port=first.port)
    assert second.port == first.port
    assert not first.running
    assert second.running
    assert requests.get(second.url + "/stream/text").text == "second app\n"


def test_a_port_held_by_another_program_raises_oserror(held_port):
    with pytest.raises(OSError, match=f"port {held_port} .* in use by another"):
        serve(create_app(), port=held_port)


@pytest.mark.parametrize(
    "path", ["/stream/text", "/stream/ndjson", "/stream/html", "/stream/sse"]
)
@pytest.mark.parametrize("how", ["close", "half-close"])
def test_a_client_that_leaves_closes_the_source(live, how, path):
    # half-close: the client shuts its sending side only. Writes to it still
    # succeed, so only watching the socket for end of file notices it left
    interval = 0.5
    recorder = Recorder(forever=True, interval=interval)
    server = live(recorder)
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        client.settimeout(5)
        received = b""
        while b"tick 0" not in received:
            received += client.recv(4096)
        assert not recorder.closed.is_set()
        if how == "half-close":
            client.shutdown(socket.SHUT_WR)
            # the source's finally runs within one interval plus 1 s
            assert recorder.closed.wait(interval + 1)
    assert recorder.closed.wait(interval + 1)


def test_display_shows_the_compact_page_in_an_iframe(live):
    server = live()
    pages = server.display("/iframe?count=3", height=200)
    assert pages.urls == [server.url + "/iframe?count=3&embed=1"]
    html = pages._repr_html_()
    assert html.count("<iframe") == 1
    assert "height: 200px" in html


def test_display_shows_pages_side_by_side_in_equal_shares(live):
    server, other = live(), live()
    html = server.display("/xhr?poll=1", "/xhr", other.url + "/sse")._repr_html_()
    assert html.count("<iframe") == 3
    # each frame may shrink to its share, so none pushes another out of the cell
    assert html.count("flex: 1 1 0; min-width: 0") == 3
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources == [
        f"{server.url}/xhr?poll=1&amp;embed=1",
        f"{server.url}/xhr?embed=1",
        f"{other.url}/sse?embed=1",
    ]
