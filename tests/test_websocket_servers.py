"""The WebSocket against clients that break the rules, on every server it runs
on: serve(), gunicorn's gthread workers and its gevent workers.

- A handshake without a key or a version, or with version 8, gets 400 or
  426, never a 500 with a traceback.
- What a client sends is read and dropped: 100 MB of small messages leave
  the server's memory as it was; one compressed frame that inflates to
  256 MB closes with 1009 before the server holds it; more messages a second
  than allowed close with 1008.
- A client that stops reading for a while, then reads everything, gets every
  frame whole and every message intact (gevent used to cut them).

The clients are tests/websocket_raw.py, written from the RFC on a bare
socket, so that nothing in the library under test checks its own output.
"""

import contextlib
import fcntl
import json
import termios
import time
import urllib.request

import psutil
import pytest

from livestream import serve
from livestream.tools.services import start_gunicorn
from testing_support import wait_until

from . import websocket_apps
from .websocket_apps import sized
from .websocket_raw import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameReader,
    close_code,
    deflated,
    frame,
    upgrade,
)

SERVERS = ["serve", "gthread", "gevent"]

# an app that sends 8 MB, in as many messages as ?count= says
SIZED = ("sized_app", {"total": 8_000_000})
# an app that says "ready" and then sends nothing, with the default limits
QUIET = ("quiet_app", {})
# the same with no rate limit to speak of, to see that messages are dropped
UNLIMITED = ("quiet_app", {"WS_MAX_MESSAGES_PER_SECOND": 10**9})

# how much a server may grow while a client sends what follows; before the
# limits it grew by about as much as was sent (131 MB and 283 MB)
GROWTH = 30e6


class Served:
    """A running server: its URL, and the resident memory of the process
    that serves the WebSocket."""

    def __init__(self, url, pid):
        self.url = url
        self.pid = pid

    def rss(self):
        return psutil.Process(self.pid).memory_info().rss


@pytest.fixture(scope="module")
def servers():
    """``servers(kind, app)``: that app on that server, started once a module.

    gunicorn gets one worker, so the process whose memory is measured is the
    one that serves every connection."""
    started = {}
    with contextlib.ExitStack() as stack:

        def start(kind, app):
            name, config = app
            key = (kind, name, tuple(sorted(config.items())))
            if key not in started:
                if kind == "serve":
                    factory = getattr(websocket_apps, name)
                    server = stack.enter_context(serve(factory(**config)))
                else:
                    arguments = ", ".join(f"{k}={v!r}" for k, v in config.items())
                    server = stack.enter_context(
                        start_gunicorn(
                            workers=1,
                            connections=20,
                            app=f"tests.websocket_apps:{name}({arguments})",
                            worker_class=kind,
                        )
                    )
                with urllib.request.urlopen(server.url + "/status") as response:
                    pid = json.load(response)["pid"]
                started[key] = Served(server.url, pid)
            return started[key]

        yield start


def opened(server, query="", deflate=False):
    """A WebSocket to the server's stream, and a strict reader of its frames."""
    headers = {"Sec-WebSocket-Extensions": "permessage-deflate"} if deflate else {}
    status, response, rest, sock = upgrade(server.url, "/stream/ws?" + query, headers)
    assert status == 101, status
    agreed = "permessage-deflate" in response.get("sec-websocket-extensions", "")
    assert agreed == deflate
    return sock, FrameReader(sock, rest, deflate=deflate)


def closed_with(reader):
    """The code and reason of the close frame, after any messages before it."""
    while True:
        opcode, payload = reader.message()
        if opcode == CLOSE:
            return close_code(payload)


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({"Sec-WebSocket-Key": None}, 400, "Sec-WebSocket-Key is missing\n"),
        (
            {"Sec-WebSocket-Version": None},
            400,
            "Sec-WebSocket-Version is missing: a WebSocket sends 13\n",
        ),
        (
            {"Sec-WebSocket-Version": "8"},
            426,
            "Sec-WebSocket-Version '8' is not spoken here: only 13\n",
        ),
        (
            {"Sec-WebSocket-Key": "c2hvcnQ="},
            400,
            "Sec-WebSocket-Key must be 16 bytes in base64\n",
        ),
    ],
    ids=["no key", "no version", "version 8", "short key"],
)
def test_a_bad_handshake_is_refused_in_one_line(servers, kind, headers, status, text):
    server = servers(kind, QUIET)
    code, response, rest, sock = upgrade(server.url, headers=headers, timeout=10)
    with sock:
        body = rest
        while len(body) < int(response["content-length"]):
            body += sock.recv(4096)
    assert code == status
    assert body.decode() == text
    assert response["content-type"] == "text/plain; charset=utf-8"
    # RFC 6455, 4.4: the versions this server speaks
    assert response.get("sec-websocket-version") == ("13" if status == 426 else None)


@pytest.mark.parametrize("kind", SERVERS)
def test_what_a_client_sends_is_dropped(servers, kind):
    server = servers(kind, UNLIMITED)
    sock, reader = opened(server)
    with sock:
        assert reader.message() == (TEXT, b"ready")
        before = server.rss()
        # 100 MB as 100,000 messages of 1 KB, the same bytes sent again and again
        batch = frame(TEXT, b"x" * 1024) * 100
        for _ in range(1000):
            sock.sendall(batch)
        # the pong comes once the server has read everything before the ping
        sock.sendall(frame(PING, b"all read?"))
        assert pong(reader) == b"all read?"
        grown = server.rss() - before
        # still open, and it closes as asked
        sock.sendall(frame(CLOSE, (1000).to_bytes(2, "big")))
        assert closed_with(reader) == (1000, "")
    assert grown < GROWTH, f"the server grew by {grown / 1e6:.0f} MB"


def pong(reader):
    """The payload of the next pong, skipping the messages before it."""
    while True:
        _, opcode, _, payload = reader.frame()
        if opcode == PONG:
            return payload


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("shape", ["compressed", "plain", "fragments"])
def test_a_message_past_the_limit_closes_1009(servers, kind, shape):
    server = servers(kind, QUIET)
    # made before the count starts: the test's own bytes are not the server's
    if shape == "compressed":
        # one frame of 255 KB that inflates to 256 MB of zeros
        frames = [frame(BINARY, deflated(256 << 20), rsv1=True)]
    elif shape == "plain":
        frames = [frame(BINARY, bytes(65_537))]
    else:
        # each fragment within the limit, the message past it
        part = bytes(40_000)
        frames = [frame(BINARY, part, fin=False), frame(0, part)]
    sock, reader = opened(server, deflate=shape == "compressed")
    with sock:
        assert reader.message() == (TEXT, b"ready")
        before = server.rss()
        with contextlib.suppress(OSError):  # the server may stop reading
            sock.sendall(b"".join(frames))
        code, reason = closed_with(reader)
        grown = server.rss() - before
    assert (code, reason) == (1009, "a message over 65536 bytes: WS_MAX_MESSAGE_BYTES")
    assert grown < GROWTH, f"the server grew by {grown / 1e6:.0f} MB"


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("opcode", [TEXT, PING], ids=["messages", "pings"])
def test_messages_past_the_rate_close_1008(servers, kind, opcode):
    server = servers(kind, QUIET)
    sock, reader = opened(server)
    with sock:
        assert reader.message() == (TEXT, b"ready")
        # the default allows 100 at once, then 100 a second
        with contextlib.suppress(OSError):
            sock.sendall(frame(opcode, b"hi") * 500)
        code, reason = closed_with(reader)
    assert code == 1008
    assert reason == "more than 100 messages a second: WS_MAX_MESSAGES_PER_SECOND"


@pytest.mark.parametrize("kind", SERVERS)
def test_messages_within_the_limits_keep_the_stream_open(servers, kind):
    server = servers(kind, QUIET)
    sock, reader = opened(server, deflate=True)
    with sock:
        assert reader.message() == (TEXT, b"ready")
        # a second's worth at once, each just within the size limit once
        # inflated, then a ping that must still be answered
        sock.sendall(frame(BINARY, deflated(65_536), rsv1=True) * 50)
        sock.sendall(frame(PING, b"still there?"))
        assert pong(reader) == b"still there?"


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("count", [8, 8000], ids=["1 MB", "1 KB"])
def test_a_reader_that_pauses_gets_every_frame_whole(servers, kind, count):
    server = servers(kind, SIZED)
    size = SIZED[1]["total"] // count
    sock, reader = opened(server, f"count={count}")
    with sock:
        # read nothing until the server can send no more: its socket's buffer
        # and ours are full, and a send that cannot finish has returned
        assert stalled(sock), "the server kept sending to a reader that paused"
        for i in range(count):
            opcode, payload = reader.message()
            assert (opcode, len(payload)) == (TEXT, size), f"message {i}"
            assert payload.decode() == sized(i, size), f"message {i}"
        assert reader.message() == (BINARY, b"")
        assert closed_with(reader) == (1000, "end")


def stalled(sock, still=0.5, timeout=20):
    """Wait until the bytes waiting in ``sock`` have stopped growing for
    ``still`` s: the server is blocked on a full buffer."""
    last = {"waiting": -1, "since": time.monotonic()}

    def still_for_a_while():
        waiting = int.from_bytes(
            fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"), "little"
        )
        if waiting != last["waiting"]:
            last.update(waiting=waiting, since=time.monotonic())
        return waiting > 0 and time.monotonic() - last["since"] >= still

    return wait_until(still_for_a_while, timeout)
