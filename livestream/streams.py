"""Streaming responses: the headers every stream needs, the guard that
closes the source when the client goes away, and keep-alives for long gaps."""

import queue
import socket
import threading
import time

from flask import Response

# nosniff: without it Chromium holds back the first ~1 KB of text/plain while
# it guesses the type. no-cache and X-Accel-Buffering: no keep caches and
# proxies such as nginx from collecting the body before passing it on.
STREAM_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

# how often, at most, a stream looks at its socket to see whether the client left
CHECK_EVERY = 0.05

KEEPALIVE = object()  # what with_keepalive() yields when nothing came in time


def stream_response(body, mimetype, close):
    """A streaming response that calls ``close()`` however the stream ends."""
    response = Response(body, mimetype=mimetype, headers=STREAM_HEADERS)
    # werkzeug closes the response when the stream ends, breaks or is cut off;
    # closing the source there runs its ``finally`` at once
    response.call_on_close(close)
    return response


def guarded(messages, environ):
    """Yield from ``messages`` until they end or the client goes away.

    A write to a closed connection only fails after the peer answers with a
    reset, and a client that only shut its sending side never fails a write;
    looking at the socket first notices either at the next message, so the
    source is closed within one interval.
    """
    sock = environ.get("werkzeug.socket")
    iterator = iter(messages)
    last_check = time.monotonic()
    try:
        for message in iterator:
            now = time.monotonic()
            if sock is not None and now - last_check >= CHECK_EVERY:
                last_check = now
                if client_gone(sock):
                    return
            yield message
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def client_gone(sock):
    """True once the client has closed its end of ``sock``.

    A readable socket with nothing to read is at end of file: the client hung
    up. Browsers send nothing else on a connection while it streams.
    """
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def with_keepalive(messages, every):
    """Yield from ``messages``, and KEEPALIVE after each ``every`` s without one.

    The source runs on a thread of its own, so a long gap between two
    messages does not stop the stream from writing; when this generator is
    closed the thread closes ``messages`` after their next message.
    """
    handoff = queue.Queue(maxsize=64)
    stopping = threading.Event()
    finished = object()

    def offer(item):
        # a bounded wait: once the stream is gone nobody will take the item
        while not stopping.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for message in messages:
                if not offer(message):
                    break
        except Exception as error:  # carried over to the stream's thread
            offer(_Failure(error))
        finally:
            messages.close()
            offer(finished)

    threading.Thread(target=produce, name="livestream source", daemon=True).start()
    try:
        while True:
            try:
                item = handoff.get(timeout=every)
            except queue.Empty:
                yield KEEPALIVE
                continue
            if item is finished:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stopping.set()


class _Failure:
    """An exception raised by the source, on its way to the stream's thread."""

    def __init__(self, error):
        self.error = error
