"""Streaming responses: the headers every stream needs, and the relay that
runs a source on a thread of its own and stops when the client goes away."""

import collections
import contextlib
import os
import select
import socket
import sys
import threading
import time

from flask import Response, current_app, request

from . import tcp
from .framing import Unsendable

# nosniff: without it Chromium holds back the first ~1 KB of text/plain while
# it guesses the type. no-cache and X-Accel-Buffering: no keep caches and
# proxies such as nginx from collecting the body before passing it on.
STREAM_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

# how often a stream looks at its socket to see whether the client left: at
# once when the socket stirs, for the request's thread waits on the socket
# beside its next message; and at most every CHECK_EVERY s while messages
# flow. A relay that cannot watch the socket (a WebSocket's reader owns it)
# looks every UNWATCHED_WAIT s while messages don't flow; one that can
# sleeps until the next message or its socket stirs, with no timer, so an
# idle stream costs nothing
CHECK_EVERY = 0.05
UNWATCHED_WAIT = 0.1
# the feed's streams wait this long for news between looks (livestream.window)
IDLE_WAIT = 0.25

KEEPALIVE = object()  # what relay() yields after a quiet spell, when asked to

# the most messages, and about the most bytes, that go out in one write (a
# message larger than that goes out alone)
MAX_BATCH = 1000
MAX_BATCH_BYTES = 1_000_000


class ClientGone(ConnectionError):
    """The client closed its end of the connection: the stream stops there.

    A ConnectionError, so the server drops the connection without the last
    chunk or end event that would tell the client the stream had finished.
    """


def stream_response(body, mimetype, close):
    """A streaming response that calls ``close()`` however the stream ends."""
    # a client whose network vanished never says so: the kernel lets it go
    # once it has been silent that long, and the relay sees the socket fail
    timeout = current_app.config["VANISH_TIMEOUT"]
    tcp.drop_when_silent(client_socket(request.environ), timeout)
    response = Response(body, mimetype=mimetype, headers=STREAM_HEADERS)
    # werkzeug closes the response when the stream ends, breaks or is cut off;
    # closing the relay there tells the source's thread to stop
    response.call_on_close(close)
    return response


class Outcome:
    """How a stream's source ended, for the formats that can say so in-band.

    Plain lines and NDJSON have no way to: an exception there breaks the
    connection off (the server logs it), and the page reports the break.
    """

    def __init__(self, logger):
        self.logger = logger
        self.error = None

    def watch(self, messages):
        """Yield ``messages``; if they raise, log it and keep a short account."""
        try:
            yield from messages
        except ClientGone:
            raise  # nobody left to tell
        except Unsendable as error:
            self.logger.exception("a message could not be sent")
            self.error = f"a message was refused: {error}"
        except Exception as error:
            self.logger.exception("the stream's source failed")
            self.error = f"the source failed: {type(error).__name__}: {error}"[:300]


def relay(messages, environ, open_streams, budget, keepalive=None, gone=None):
    """Yield ``messages``, in lists, until they end, the client goes away, or the
    server stops.

    Each list holds the messages that were ready at that moment: one when the
    source is slow, many when it is fast, at most MAX_BATCH of them and about
    MAX_BATCH_BYTES.

    The source runs on a thread of its own, so the request's thread stays
    free to watch the socket even while the source waits for its next
    message: a client that left, or a server that stopped and cut the
    connection, ends the stream at once, with :class:`ClientGone`, even if
    the source never yields again. The source's thread is left to finish:
    it closes the source at its next message, and waits while
    ``budget`` bytes of messages wait for a client that does not read them.
    With ``keepalive`` seconds, KEEPALIVE is yielded after each quiet spell
    that long. An exception in the source is raised here, in the request's
    thread.

    ``gone()`` says whether the client left; by default a look at the
    request's socket (a WebSocket has a reader of its own on that socket,
    which knows better).
    """
    sock = None
    if gone is None:
        sock = client_socket(environ)
        gone = sock and (lambda: client_gone(sock))
    handoff = _Handoff(budget, sock)

    def produce():
        iterator = None
        try:
            iterator = iter(messages)
            for message in iterator:
                if not handoff.put(message, size_of(message)):
                    break
            else:
                handoff.put(_FINISHED, 0)
        except Exception as error:  # raised again in the request's thread
            handoff.put(_Failure(error), 0)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    open_streams.add(1)
    threading.Thread(target=produce, name="livestream source", daemon=True).start()
    try:
        last_check = last_sent = time.monotonic()
        while True:
            wait = None if handoff.watching else UNWATCHED_WAIT
            if keepalive:
                due = max(0.0, last_sent + keepalive - time.monotonic())
                wait = due if wait is None else min(wait, due)
            batch, end, stirred = handoff.take(wait)
            now = time.monotonic()
            if gone and (stirred or now - last_check >= CHECK_EVERY):
                last_check = now
                if gone():
                    raise ClientGone("the client closed the connection")
                if stirred:
                    # readable and not at its end: the client sent something
                    # that nobody reads, so the socket would stir at every wait
                    handoff.unwatch()
            if batch:
                last_sent = now
                yield batch
            elif end is None and keepalive and now - last_sent >= keepalive:
                last_sent = now
                yield KEEPALIVE
            if end is _FINISHED:
                return
            if end is not None:
                raise end.error
    finally:
        handoff.stop()
        open_streams.add(-1)


def size_of(message):
    """About how many bytes ``message`` takes: a string's length, else the
    size of the object itself (not of what it refers to)."""
    if isinstance(message, str | bytes):
        return len(message)
    return sys.getsizeof(message)


class _Handoff:
    """Messages on their way from the source's thread to the request's: at
    most MAX_BATCH of them, and about ``budget`` bytes (one larger message
    always fits).

    Given the client's socket, the request's thread waits on it too, so it
    wakes for the next message or for a client that left, whichever comes
    first: a :class:`Bell` rung by the source's thread stands for the next
    message. Without a bell (no socket, or no file descriptor left for one)
    it waits on the messages alone.
    """

    def __init__(self, budget, sock=None):
        self.budget = budget
        self._items = collections.deque()
        self._bytes = 0
        self._stopped = False
        self._changed = threading.Condition()
        self._sock = sock
        self._bell = Bell.make() if sock is not None else None
        self._waiting = False  # the request's thread waits on the bell

    @property
    def watching(self):
        """Whether take() wakes as soon as the client's socket stirs."""
        return self._bell is not None

    def unwatch(self):
        """Wait on the messages alone from now on."""
        with self._changed:
            self._close_bell()

    def put(self, item, size):
        """Wait for room, then add ``item``; False once the stream is gone."""
        with self._changed:
            while (
                not self._stopped
                and self._items
                and (len(self._items) >= MAX_BATCH or self._bytes + size > self.budget)
            ):
                self._changed.wait()
            if self._stopped:
                return False
            self._items.append((item, size))
            self._bytes += size
            self._changed.notify_all()
            if self._waiting:
                self._waiting = False  # once is enough to wake it
                self._bell.ring()
            return True

    def take(self, timeout):
        """``(batch, end, stirred)``: the messages ready within ``timeout`` s;
        _FINISHED or a _Failure if the source ended after them, else None; and
        whether the client's socket stirred meanwhile (it became readable, or
        failed)."""
        batch, end, size, stirred = [], None, 0, False
        with self._changed:
            bell = self._bell if not self._items else None
            if not self._items and bell is None:
                self._changed.wait(timeout)
            self._waiting = bell is not None
        if bell is not None:
            # outside the lock, so that the source's thread can add and ring
            stirred = bell.wait(self._sock, timeout)
        with self._changed:
            if bell is not None:
                self._waiting = False
                bell.clear()
            while self._items and len(batch) < MAX_BATCH:
                item, item_size = self._items[0]
                if batch and size + item_size > MAX_BATCH_BYTES:
                    break
                self._items.popleft()
                self._bytes -= item_size
                if item is _FINISHED or isinstance(item, _Failure):
                    end = item
                    break
                batch.append(item)
                size += item_size
            self._changed.notify_all()
        return batch, end, stirred

    def stop(self):
        """Let a waiting source go: nobody will take what it offers."""
        with self._changed:
            self._stopped = True
            self._items.clear()
            self._close_bell()
            self._changed.notify_all()

    def _close_bell(self):
        # under the lock: put() rings only under it, and only while waiting
        if self._bell is not None:
            self._waiting = False
            self._bell.close()
            self._bell = None


class Bell:
    """A file descriptor that one thread rings and another waits on with
    poll(), beside a socket: an eventfd, or a pipe where there is none.

    poll() is the one wait that both sees a socket and can be cut short from
    another thread, and gevent makes it cooperative.
    """

    def __init__(self, read_fd, write_fd):
        self._read, self._write = read_fd, write_fd

    @classmethod
    def make(cls):
        """A new bell, or None when the process has no file descriptor left."""
        try:
            if hasattr(os, "eventfd"):
                fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                return cls(fd, fd)
            read_fd, write_fd = os.pipe()
        except OSError:
            return None
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        return cls(read_fd, write_fd)

    def fileno(self):
        """The descriptor to wait on."""
        return self._read

    def ring(self):
        # eight bytes: an eventfd takes a counter's worth, a pipe any
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, _RING)

    def clear(self):
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 64)

    def wait(self, sock, timeout):
        """Wait ``timeout`` s at most (None: no limit) for a ring or a stir
        of ``sock`` (data, its end, or an error); whether ``sock`` stirred."""
        watcher = select.poll()
        watcher.register(self._read, select.POLLIN)
        try:
            watcher.register(sock, select.POLLIN)
        except (OSError, ValueError):  # closed already: that is a stir
            return True
        events = watcher.poll(None if timeout is None else timeout * 1000)
        return any(fd != self._read for fd, _ in events)

    def close(self):
        os.close(self._read)
        if self._write != self._read:
            os.close(self._write)


_RING = (1).to_bytes(8, sys.byteorder)


def client_socket(environ):
    """The client's socket, or None: werkzeug and gunicorn each hand it over
    under a name of their own; with neither, a client that left is noticed
    only when a write fails."""
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


def client_gone(sock):
    """True once the client has closed its end of ``sock``.

    A readable socket with nothing to read is at end of file: the client hung
    up, or only shut its sending side, which no write would notice. Browsers
    send nothing else on a connection while it streams.
    """
    try:
        # ask poll() first: a gevent socket's recv() would wait for data
        # (and time out) even with MSG_DONTWAIT; poll has no fd limit
        watcher = select.poll()
        watcher.register(sock, select.POLLIN)
        if not watcher.poll(0):
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


_FINISHED = object()


class _Failure:
    """An exception raised by the source, on its way to the request's thread."""

    def __init__(self, error):
        self.error = error
