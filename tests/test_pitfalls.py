"""Each pitfall of notebook 06 does what the lesson says, and so does its fix."""

import threading
import time

import pytest
import requests

from livestream import create_app
from livestream.pitfalls import compress, create_pitfalls_app
from livestream.tools.services import start_nginx
from testing_support import Recorder, wait_until


@pytest.fixture
def held():
    """A source that sends one line, then holds the stream open for the test."""
    release = threading.Event()

    def source(count, interval):
        yield "tick 0\n"
        release.wait(30)
        yield "tick 1\n"

    yield source
    release.set()


def first_line_in_time(url):
    """Whether the first line arrives while the stream is still held open."""
    try:
        with requests.get(url, stream=True, timeout=(5, 1)) as response:
            return next(response.iter_lines(chunk_size=None)) == b"tick 0"
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        return False  # nothing came within the read timeout


def test_headers_of_the_sniffed_and_the_fixed_stream():
    client = create_pitfalls_app().test_client()
    sniffed = client.get("/sniffed?count=1")
    fixed = client.get("/nosniff?count=1")
    assert "X-Content-Type-Options" not in sniffed.headers
    assert fixed.headers["X-Content-Type-Options"] == "nosniff"
    assert fixed.headers["X-Accel-Buffering"] == "no"


def test_compression_middleware_holds_a_stream_back(live, held):
    app = create_pitfalls_app(held)
    assert not first_line_in_time(live(app=compress(app)).url + "/nosniff")
    assert first_line_in_time(live(app=compress(app, streams=False)).url + "/nosniff")


def test_compression_still_compresses_whole_responses(live):
    server = live(app=compress(create_pitfalls_app(), streams=False))
    response = requests.get(server.url + "/probe?stream=nosniff", timeout=5)
    assert response.headers["Content-Encoding"] == "gzip"
    assert "XMLHttpRequest" in response.text


@pytest.mark.nginx
def test_nginx_as_deployed_holds_a_stream_unless_told_not_to(live, held):
    # proxied as gunicorn's docs show it, nginx's defaults (buffering on, an
    # HTTP/1.0 request to the app) hold a stream's first line until a 4 KB
    # buffer fills or the stream ends: here, until the held stream goes on
    app_server = live(app=create_pitfalls_app(held))
    with start_nginx(app_server.url) as nginx:
        assert not first_line_in_time(nginx.url + "/unmarked")
        assert first_line_in_time(nginx.url + "/nosniff")  # X-Accel-Buffering: no
    with start_nginx(app_server.url, buffering=False) as nginx:
        assert first_line_in_time(nginx.url + "/unmarked")


@pytest.mark.nginx
def test_nginx_holds_what_it_compresses_even_over_http_1_1(live, held):
    # over HTTP/1.1 the app answers in chunks, and nginx passes most on as
    # they come (one may wait for the next: not certain enough to test), but
    # gzip waits for the end all the same
    app_server = live(app=create_pitfalls_app(held))
    with start_nginx(
        app_server.url, http_version="1.1", gzip_types=["text/plain"]
    ) as nginx:
        assert not first_line_in_time(nginx.url + "/unmarked")
        assert first_line_in_time(nginx.url + "/nosniff")


def test_start_nginx_names_the_http_versions_it_takes():
    with pytest.raises(ValueError, match="http_version must be '1.0' or '1.1'"):
        start_nginx("http://127.0.0.1:1", http_version="2")


def test_reading_request_in_the_generator_needs_stream_with_context(live, capfd):
    server = live(app=create_pitfalls_app())
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(server.url + "/no-context?name=ada", timeout=5)
    # the server keeps the error with its traceback, for lesson 06 to show
    assert wait_until(
        lambda: any("Working outside of request context" in e for e in server.errors),
        5,
    )
    assert "Traceback" in server.errors[-1]
    assert "Working outside" not in capfd.readouterr().err
    fixed = requests.get(server.url + "/with-context?name=ada", timeout=5)
    assert fixed.text == "start\nname=ada\n"


def test_a_header_set_after_the_first_yield_is_lost():
    response = create_pitfalls_app().test_client().get("/late-header")
    assert response.get_data(as_text=True) == "first\nsecond\n"
    assert "X-Set-Late" not in response.headers
    fixed = create_pitfalls_app().test_client().get("/early-header")
    assert fixed.get_data(as_text=True) == "first\nsecond\n"
    assert fixed.headers["X-Set-Late"] == "yes"


def test_the_source_runs_on_until_its_next_message(live):
    # the client leaves at once; the request's thread notices within a
    # moment, but the source sits in its sleep until its next message
    interval = 0.6
    recorder = Recorder(forever=True, interval=interval)
    server = live(recorder)
    with requests.get(server.url + "/stream/text", stream=True, timeout=5) as r:
        next(r.iter_lines(chunk_size=None))
    left = time.monotonic()
    assert wait_until(lambda: server.active_streams == 0, 0.5)
    assert not recorder.closed.is_set()
    assert recorder.closed.wait(interval + 1)
    assert time.monotonic() - left > 0.1


@pytest.mark.parametrize(
    "path",
    [
        "/connections?streams=0",
        "/connections?streams=x",
        "/connections?other_host=example.com",
        "/probe?stream=elsewhere",
        "/probe?stream=nosniff&header=Set-Cookie",
        "/sniffed?count=-1",
        "/nosniff?interval=fast",
    ],
)
def test_pitfall_pages_check_their_input(path):
    response = create_pitfalls_app().test_client().get(path)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"


def test_the_main_app_is_not_affected():
    # the pitfalls app is separate: the main app keeps its fixed headers
    response = create_app().test_client().get("/stream/text?count=1")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
