"""One write per piece of the feed for every waiting stream of a process.

A feed stream that has caught up with its window parks its socket in a
:class:`Spot`. From then on the window's reader frames each new piece of
the feed once and sends it straight to every parked socket, without
waiting: no thread or greenlet per stream wakes for a message, so the cost
of a delivery is one system call, however many clients there are.

A socket that would block keeps the rest of its piece queued, up to the
stream's byte budget, and the stream's own thread (woken by its bell)
sends the queue as the socket drains. A stream past its budget leaves the
broadcast and catches up from Redis by entry id, as a stream that fell
behind always has. A parked stream's thread sleeps on its socket and its
bell with no timeout: an idle client costs nothing until there is
something to send or its socket says the client left.

The stream's first bytes (the response head, ``retry:``, the first
comment) go through the WSGI server as usual; the writes here follow them
on the same connection, framed the way that server frames a body: as
HTTP/1.1 chunks, or bare for HTTP/1.0. Only servers whose framing is known
are parked (gunicorn, and :mod:`livestream.httpd`); a stream on any other
keeps waking to write for itself.
"""

import _socket  # the socket type itself: gevent patches socket.socket
import collections
import itertools
import select
import socket
import time

from .httpd import CHUNKED_KEY
from .streams import Bell, client_socket

# what a parked stream's wait ends with
BEHIND, GONE, FAILED = "behind", "gone", "failed"

_ERRORS = select.POLLERR | select.POLLHUP | select.POLLNVAL
# the most buffers one sendmsg() takes (Linux's IOV_MAX is 1024)
MOST_BUFFERS = 1024


def chunked_body(environ):
    """Whether the server frames this response's body as HTTP/1.1 chunks;
    None when its framing is unknown, and the stream must not be parked."""
    if environ.get("REQUEST_METHOD") == "HEAD":
        return None
    if "gunicorn.socket" in environ:
        # gunicorn chunks every body of unknown length, unless HTTP/1.0
        return environ.get("SERVER_PROTOCOL") != "HTTP/1.0"
    return environ.get(CHUNKED_KEY)


class Piece:
    """A piece of the feed: the frames of its entries, shared with the
    window (never copied), and the framing a stream's body needs around them.
    """

    def __init__(self, frames, last):
        self.frames = tuple(frames)
        self.size = sum(map(len, self.frames))
        self.last = last  # the id of its last entry, or None for a keep-alive
        self._chunk = (b"%x\r\n" % self.size, *self.frames, b"\r\n")
        self.chunk_size = sum(map(len, self._chunk))

    def framed(self, chunked):
        """The buffers to send, in order: as an HTTP/1.1 chunk, or bare."""
        return self._chunk if chunked else self.frames


class Spot:
    """A parked stream: its socket, what waits to be sent on it, and where it
    is in the feed.

    Every method but :meth:`wait` runs under the window's lock; ``wait``
    takes it itself, through ``lock``.
    """

    def __init__(self, sock, chunked, budget, keepalive, bell):
        self.chunked = chunked
        self.budget = budget
        self.keepalive = keepalive
        self.last = None  # id of the last entry sent or queued
        self.state = None  # None while parked, else why it left
        self.wrote = time.monotonic()
        self._sock = sock
        # a plain socket on the same descriptor, detached when the stream
        # ends: its send() with MSG_DONTWAIT never waits, under gevent too
        self._raw = _socket.socket(fileno=sock.fileno())
        self._bell = bell
        self._pending = collections.deque()
        self._pending_bytes = 0

    @classmethod
    def make(cls, environ, budget, keepalive):
        """A spot for the stream of ``environ``, or None if it cannot park:
        a server whose framing is unknown, or no descriptor left for a bell."""
        chunked = chunked_body(environ)
        sock = client_socket(environ)
        if chunked is None or sock is None:
            return None
        bell = Bell.make()
        if bell is None:
            return None
        try:
            return cls(sock, chunked, budget, keepalive, bell)
        except OSError:
            bell.close()
            return None

    def offer(self, piece, now):
        """Send ``piece`` now or queue it; False if the spot left the
        broadcast instead (too far behind, or the client is gone)."""
        if self.state is not None:
            return False  # left already; the window drops it soon
        buffers = piece.framed(self.chunked)
        size = piece.chunk_size if self.chunked else piece.size
        if self._pending:
            if self._pending_bytes + size > self.budget:
                return self._leave(BEHIND)  # it catches up after `last`
            self._pending.extend(buffers)
            self._pending_bytes += size
        else:
            try:
                sent = self._raw.sendmsg(
                    buffers[:MOST_BUFFERS], (), socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                sent = 0
            except OSError:
                return self._leave(GONE)
            if sent < size:
                self._pending.extend(_after(buffers, sent))
                self._pending_bytes += size - sent
                self._bell.ring()  # its thread sends the rest as it drains
        self.wrote = now
        if piece.last is not None:
            self.last = piece.last
        return True

    def fail(self):
        """The window failed: the stream ends with its error."""
        self._leave(FAILED)

    def _leave(self, state):
        self.state = state
        self._bell.ring()
        return False

    def wait(self, lock):
        """Sleep until the spot leaves the broadcast, sending what queues
        up meanwhile; BEHIND, GONE or FAILED.

        BEHIND returns only once everything queued is sent, so the stream
        goes on from ``last`` through the WSGI server in order.
        """
        while True:
            with lock:
                state = self.state
                pending = list(itertools.islice(self._pending, MOST_BUFFERS)) or None
            if state in (GONE, FAILED) or (state == BEHIND and pending is None):
                return state
            poller = select.poll()
            poller.register(self._bell.fileno(), select.POLLIN)
            poller.register(
                self._sock, select.POLLIN | (select.POLLOUT if pending else 0)
            )
            events = dict(poller.poll())  # no timeout: see the module's doc
            if self._bell.fileno() in events:
                self._bell.clear()
            stirred = events.get(self._sock.fileno(), 0)
            if stirred & (select.POLLIN | _ERRORS) and self._client_left():
                with lock:
                    self.state = GONE
                return GONE
            if pending is not None and stirred & select.POLLOUT:
                try:
                    sent = self._raw.sendmsg(pending, (), socket.MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    with lock:
                        self.state = GONE
                    return GONE
                with lock:
                    # only this thread takes from the queue; offer() adds
                    # to its end
                    self._pending_bytes -= sent
                    self._drop(sent)

    def _drop(self, sent):
        """Take ``sent`` bytes off the front of the queue."""
        while sent:
            first = self._pending[0]
            if sent < len(first):
                self._pending[0] = memoryview(first)[sent:]
                return
            sent -= len(first)
            self._pending.popleft()

    def _client_left(self):
        """Whether the client is gone; what else it sent is read and dropped
        (a browser sends nothing on a streaming connection)."""
        try:
            return self._raw.recv(65536, socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self):
        """Let go of the descriptor (the server closes the socket) and the bell."""
        self._raw.detach()
        self._bell.close()
        self._pending.clear()


def _after(buffers, sent):
    """What is left of ``buffers`` once their first ``sent`` bytes are sent."""
    for at, buffer in enumerate(buffers):
        if sent < len(buffer):
            return [memoryview(buffer)[sent:], *buffers[at + 1 :]]
        sent -= len(buffer)
    return []
