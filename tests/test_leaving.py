"""A client that leaves, on every server the app runs on (serve()'s werkzeug
server, gunicorn's gthread and gevent workers): its stream is freed and its
connection closed at once, even while the source hangs and never yields
again; the source's thread is left to finish when it can.

The app is ``testing_support.stalled_app()``: every stream and the answer
send one message, then wait."""

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from livestream.tools.services import start_gunicorn
from testing_support import has_first_message, stalled_app, surfaces, wait_until

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ["serve", "gthread", "gevent"]
# every stream a source feeds through the relay (the table's, the answer)
STREAMS = [s.path for s in surfaces() if not s.websocket and not s.redis]
# the issue asks for a quarter of a second; a stream that waits on its socket
# notices in milliseconds, one that looks every quarter second does not
NOTICE = 0.2

pytestmark = pytest.mark.timing


@pytest.fixture(scope="module")
def stalled_gunicorn():
    """gunicorn serving stalled_app() on each worker class, started when
    first asked for, once a module. One worker, so that /status counts the
    streams of the process that serves them."""
    started = {}

    def get(worker_class):
        if worker_class not in started:
            started[worker_class] = start_gunicorn(
                workers=1,
                connections=8,
                worker_class=worker_class,
                app="testing_support:stalled_app()",
                # where testing_support is, whatever folder pytest runs in
                extra=("--chdir", str(ROOT)),
            )
        return started[worker_class]

    yield get
    for service in started.values():
        service.stop()


class Served:
    """The stalled app on one server: its address, its open streams, and its
    stall where the test can reach it (in this process: serve() only)."""

    def __init__(self, url, open_streams, stall=None):
        self.url, self.open_streams, self.stall = url, open_streams, stall


@pytest.fixture(params=SERVERS)
def served(request, live, stalled_gunicorn):
    """The stalled app on each server in turn."""
    if request.param == "serve":
        app = stalled_app()
        server = live(app=app)
        stall = app.extensions["stall"]
        yield Served(server.url, lambda: server.active_streams, stall)
        stall.release.set()  # the source's thread may finish now
        return
    url = stalled_gunicorn(request.param).url

    def open_streams():
        return requests.get(url + "/status", timeout=5).json()["active_streams"]

    yield Served(url, open_streams)


def open_stream(url, path):
    """A connection reading ``path`` once its first message has arrived."""
    address = urlsplit(url)
    conn = socket.create_connection((address.hostname, address.port), 10)
    host = address.netloc.encode()
    if path == "/stream/answer":
        body = b'{"prompt": "go"}'
        conn.sendall(
            b"POST /stream/answer HTTP/1.1\r\nHost: %s\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (host, len(body), body)
        )
    else:
        conn.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host))
    received = b""
    while not has_first_message(received):
        data = conn.recv(65536)
        assert data, received
        received += data
    return conn


def seconds_to_close(conn, limit):
    """How long until the server closes ``conn``; None past ``limit`` s."""
    began = time.monotonic()
    conn.settimeout(limit)
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionError:
        pass  # reset: closed all the same
    return time.monotonic() - began


@pytest.mark.parametrize("path", STREAMS)
def test_a_hung_stream_is_freed_when_its_client_leaves(served, path):
    with open_stream(served.url, path) as conn:
        assert served.open_streams() == 1
        # the client is done: its FIN reaches the server, and it can still
        # read to see the server close its end
        conn.shutdown(socket.SHUT_WR)
        took = seconds_to_close(conn, limit=5)
    assert took is not None, "the server kept the connection open"
    assert took < NOTICE
    # the stream was counted out before its connection closed
    assert served.open_streams() == 0


def test_an_aborted_answer_is_noticed_at_once(served):
    # what a page's Stop does: the browser closes the connection outright
    conn = open_stream(served.url, "/stream/answer")
    assert served.open_streams() == 1
    conn.close()
    assert wait_until(lambda: served.open_streams() == 0, NOTICE)


def test_the_hung_source_is_left_to_finish(live):
    app = stalled_app()
    server = live(app=app)
    stall = app.extensions["stall"]
    with open_stream(server.url, "/stream/answer") as conn:
        conn.shutdown(socket.SHUT_WR)
        assert seconds_to_close(conn, limit=5) is not None
    # freed while the source still waits: nothing waited for it
    assert server.active_streams == 0
    assert not stall.closed.is_set()
    # once it can go on, it is closed rather than run on
    stall.release.set()
    assert stall.closed.wait(2)
