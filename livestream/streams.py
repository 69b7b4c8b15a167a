"""Streaming responses: the headers every stream needs, and the guard that
closes the source when the client goes away."""

import socket
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


def stream_response(body, mimetype, messages):
    """A streaming response that closes ``messages`` however the stream ends."""
    response = Response(body, mimetype=mimetype, headers=STREAM_HEADERS)
    # werkzeug closes the response when the stream ends, breaks or is cut off;
    # closing the source there runs its ``finally`` at once
    response.call_on_close(messages.close)
    return response


def guarded(messages, environ):
    """Yield from ``messages`` until they end or the client goes away.

    A write to a closed connection only fails after the peer answers with a
    reset, one message later; looking at the socket first notices the client
    left at the next message, so the source is closed within one interval.
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
