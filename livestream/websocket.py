"""The WebSocket's mechanics, for a stream that only sends: the handshake
checked before anything is sent, frames that go out whole on every server,
and what the client sends read, counted and dropped.

Built on simple-websocket's server (what flask-sock's decorator would build;
the view builds it here, to give it the socket and limits below), with three
things it lacks:

- It writes a frame with one ``socket.send()`` and ignores how many bytes
  went: under gunicorn's gevent workers a reader that pauses gets part of a
  frame, then the next (docs/upstream-simple-websocket.md). Here the socket
  it is given sends every byte, and one frame at a time.
- It keeps every message a client sends until the view asks for it; a
  stream never asks. Here messages are counted and dropped as they arrive.
- A handshake it cannot accept is an exception (under flask-sock, a 500 and
  a traceback) rather than RFC 6455's 400, or 426 for a version it does not
  speak.

permessage-deflate stays on (a stream of text shrinks), and what arrives is
inflated a read at a time: wsproto inflates each piece of a frame as it is
read (``RECEIVE_BYTES``), and deflate grows data at most about 1,032 times,
so one read is at most about 4 MB however large the frame says it is. The
size limit counts bytes after inflating, piece by piece, and closes the
connection before the next read.
"""

import base64
import binascii
import contextlib
import socket
import threading
import time

import simple_websocket
from flask import Response
from simple_websocket import ConnectionClosed
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

__all__ = ["ConnectionClosed", "StreamSocket", "accept", "finished", "refusal"]

# what a client may send to a stream, which nothing reads: the settings
# WS_MAX_MESSAGE_BYTES and WS_MAX_MESSAGES_PER_SECOND
MAX_MESSAGE_BYTES = 65_536
MAX_MESSAGES_PER_SECOND = 100

# close codes (RFC 6455, 7.4.1): a message too big, or sent too fast
TOO_BIG = 1009
POLICY = 1008

# bytes read from the socket at a time: what one step inflates comes from
# this many compressed bytes at most
RECEIVE_BYTES = 4096
# after refusing a client, how long to read (and drop) what it still sends,
# so that its unread bytes do not turn our close into a reset that loses it
LINGER = 2.0

VERSION = "13"


def refusal(headers):
    """The response to an upgrade that cannot be accepted, or None.

    RFC 6455, 4.2.2: a handshake without a key or a version is a bad request;
    a version other than 13 gets 426 and the version this server speaks.
    """
    version = headers.get("Sec-WebSocket-Version")
    if version is None:
        return _refused(400, "Sec-WebSocket-Version is missing: a WebSocket sends 13")
    if version.strip() != VERSION:
        return _refused(
            426,
            f"Sec-WebSocket-Version {version[:20]!r} is not spoken here: only 13",
            {"Sec-WebSocket-Version": VERSION},
        )
    key = headers.get("Sec-WebSocket-Key")
    if key is None:
        return _refused(400, "Sec-WebSocket-Key is missing")
    try:
        nonce = base64.b64decode(key.strip(), validate=True)
    except binascii.Error:
        nonce = b""
    if len(nonce) != 16:
        return _refused(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    return None


def _refused(status, text, headers=None):
    return Response(
        f"{text}\n", status, headers, content_type="text/plain; charset=utf-8"
    )


def accept(environ, max_message_bytes, max_messages_per_second):
    """Send the 101 and return the connection: a :class:`StreamSocket`, or
    the response to send instead when the handshake fails in the library."""
    try:
        return StreamSocket(environ, max_message_bytes, max_messages_per_second)
    except RemoteProtocolError as error:
        # what refusal() did not foresee; the library has sent nothing yet
        hint = error.event_hint
        status = getattr(hint, "status_code", 400)
        headers = [(k.decode(), v.decode()) for k, v in getattr(hint, "headers", [])]
        return _refused(status, f"not a WebSocket handshake: {error}", headers)


class WholeSends:
    """A socket whose ``send()`` sends every byte before it returns.

    simple-websocket calls ``send()`` once per frame. A blocking socket
    sends all of it; a gevent socket sends what fits and returns the count.
    """

    def __init__(self, sock):
        self._sock = sock

    def send(self, data):
        self._sock.sendall(data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class StreamSocket(simple_websocket.Server):
    """simple-websocket's server with whole frames, one sender at a time,
    and what the client sends dropped within limits: a message larger than
    ``max_message_bytes`` (after inflating) closes with 1009, more than
    ``max_messages_per_second`` (pings count) with 1008."""

    def __init__(self, environ, max_message_bytes, max_messages_per_second):
        # set before the handshake, which already reads and sends
        self.max_message_bytes = max_message_bytes
        self.rate = max_messages_per_second
        self._allowance = float(max_messages_per_second)
        self._counted_at = time.monotonic()
        self._incoming = 0
        # a frame is made and sent under this lock: the view sends messages
        # while the reader thread answers pings and closes, and neither may
        # put a frame inside another or after the close
        self._sending = threading.RLock()
        super().__init__(_whole_sends(environ), receive_bytes=RECEIVE_BYTES)

    def send(self, data):
        """Send one message; ConnectionClosed once the connection is over,
        however it ended (a close, a reset, a refusal)."""
        with self._sending:
            try:
                super().send(data)
            except (OSError, LocalProtocolError):
                self.connected = False
                raise ConnectionClosed(self.close_reason, self.close_message) from None

    def close(self, reason=None, message=None):
        with self._sending:
            try:
                super().close(reason, message)
            except (OSError, LocalProtocolError):
                self.connected = False
                raise ConnectionClosed(self.close_reason, self.close_message) from None

    def _handle_events(self):
        """Handle what arrived; False once the connection is over.

        Runs in simple-websocket's reader thread (and once in the handshake).
        """
        try:
            for event in self.ws.events():
                if isinstance(event, Request):
                    self._send_frame(AcceptConnection(extensions=[PerMessageDeflate()]))
                elif isinstance(event, CloseConnection):
                    self.close_reason, self.close_message = event.code, event.reason
                    self.connected = False
                    self._send_frame(event.response())
                    self.event.set()
                    return False
                elif isinstance(event, Message):
                    self._incoming += _size(event.data)
                    if self._incoming > self.max_message_bytes:
                        return self._refuse(
                            TOO_BIG,
                            f"a message over {self.max_message_bytes} bytes: "
                            "WS_MAX_MESSAGE_BYTES",
                        )
                    if event.message_finished:
                        self._incoming = 0
                        if not self._counted():
                            return self._too_fast()
                elif isinstance(event, Ping):
                    if not self._counted():
                        return self._too_fast()
                    self._send_frame(event.response())
                elif isinstance(event, Pong):
                    self.pong_received = True
        except (OSError, LocalProtocolError):
            self.connected = False
            self.event.set()
            return False
        return True

    def _send_frame(self, event):
        with self._sending:
            self.sock.send(self.ws.send(event))

    def _counted(self):
        """Count one message; False past the rate (a second's worth may come
        at once, then ``rate`` a second)."""
        now = time.monotonic()
        elapsed, self._counted_at = now - self._counted_at, now
        self._allowance = min(self.rate, self._allowance + elapsed * self.rate) - 1
        return self._allowance >= 0

    def _too_fast(self):
        return self._refuse(
            POLICY,
            f"more than {self.rate} messages a second: WS_MAX_MESSAGES_PER_SECOND",
        )

    def _refuse(self, code, reason):
        """Close with ``code``, then read what the client still sends, for a
        moment, so the close frame reaches it: closing a socket with unread
        bytes sends a reset, which may destroy the close frame in transit."""
        with self._sending:
            self.close_reason, self.close_message = code, reason
            self.connected = False
            with contextlib.suppress(OSError, LocalProtocolError):
                self.sock.send(self.ws.send(CloseConnection(code, reason)))
                self.sock.shutdown(socket.SHUT_WR)
        self.event.set()
        _drain(self.sock, LINGER)
        return False


def _whole_sends(environ):
    """``environ`` with the client's socket (under werkzeug's name or
    gunicorn's, where simple-websocket looks) made to send whole frames."""
    environ = dict(environ)
    for key in ("werkzeug.socket", "gunicorn.socket"):
        if environ.get(key) is not None:
            environ[key] = WholeSends(environ[key])
    return environ


def _size(data):
    return len(data.encode()) if isinstance(data, str) else len(data)


def _drain(sock, seconds):
    """Read and drop until the client closes, or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(OSError):
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return


class _Finished(Response):
    """What the view returns once its WebSocket is over.

    gunicorn must write nothing more: StopIteration is how a gunicorn worker
    is told the connection was taken over, and it closes it. werkzeug always
    writes a response; the view has shut the socket's sending side, so it
    goes nowhere.
    """

    def __call__(self, environ, start_response):
        if "gunicorn.socket" in environ:
            raise StopIteration
        return super().__call__(environ, start_response)


def finished(ws):
    """End the view's side of ``ws``: no byte may follow the close frame
    (werkzeug's response would, and a browser reads it as a bad frame,
    code 1006).

    The reader thread is given a moment to read the client's answering
    close, or to finish dropping what a refused client still sends: the
    server closes the connection once the view returns, and closing it with
    bytes unread sends a reset that may destroy the close frame on its way.
    """
    with contextlib.suppress(OSError):
        ws.sock.shutdown(socket.SHUT_WR)
    ws.thread.join(LINGER)
    return _Finished()
