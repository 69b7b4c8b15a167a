"""werkzeug's threaded server, hardened for streams that stay open.

A stream holds its connection and a thread for as long as it runs, so the
server bounds what a client can hold: a request's head must arrive within
``head_timeout``, and past ``max_connections`` a new connection is answered
503 at once from the accepting thread. It also keeps its open connections, so
that :meth:`LiveServer.stop <livestream.server.LiveServer.stop>` can cut them.
:func:`mounted` is the WSGI wrapper it runs an app in: the app published
under a proxy's path, and the readiness check.

Its handler mends two things werkzeug's gets wrong: a chunk extension
(``5;name=value``) in a request body, which HTTP/1.1 allows, and an answer to
HTTP/1.0, which has no chunked encoding.
"""

import contextlib
import errno
import io
import re
import resource
import socket
import threading
import time

from werkzeug.serving import DechunkedInput, ThreadedWSGIServer, WSGIRequestHandler

# in each request's environ: whether werkzeug frames a body of unknown
# length as HTTP/1.1 chunks on this connection (livestream.broadcast writes
# the feed's bodies itself, framed the same way)
CHUNKED_KEY = "livestream.chunked"

# seconds a client gets to send a request's line and headers; one that sends
# them slower (or never) is cut off, so it cannot hold a thread for ever. A
# stream, once it runs, has no time limit
HEAD_TIMEOUT = 10.0
# connections handled at once; past it a new connection gets 503 at once,
# long before the process runs out of file descriptors
MAX_CONNECTIONS = 2000
# open files kept free for everything else the process opens
SPARE_FILES = 64
# open files a stream's connection holds: its socket, and the bell its relay
# waits on beside it (livestream.streams)
FILES_PER_CONNECTION = 2
# how long a refused connection stays open at most for its client to close it
REFUSED_LINGER = 2.0
# connections taken from the backlog at most each time the accepting thread
# wakes: a crowd arriving at once is accepted in batches, not a select() per
# connection, while the loop still gets back to its other duties (closing
# refused connections, noticing shutdown) between batches
ACCEPT_BATCH = 64
# the longest line a chunk's size may take, extension and all, and the most
# bytes of trailer fields after the last chunk
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 8192

_BUSY_TEXT = b"the server is handling as many connections as it can; try again\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_BUSY_TEXT)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n" + _BUSY_TEXT
)


def listen(host, port):
    """A listening socket on ``host:port``, or an OSError that names the port."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(backlog())
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise OSError(
                error.errno,
                f"port {port} on {host} is in use by another program: stop that "
                "program, or serve on another port (port=0 picks a free one)",
            ) from None
        raise OSError(
            error.errno, f"cannot serve on {host}:{port}: {error.strerror}"
        ) from None
    return listener


def backlog():
    """The longest queue of connections waiting to be accepted that the system
    allows: a crowd arriving at once waits there instead of being dropped."""
    try:
        with open("/proc/sys/net/core/somaxconn") as limit:
            return max(int(limit.read()), socket.SOMAXCONN)
    except (OSError, ValueError):
        return socket.SOMAXCONN


def connection_cap():
    """MAX_CONNECTIONS, or fewer when the open-file limit is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    files = (soft - SPARE_FILES) // FILES_PER_CONNECTION
    return max(1, min(MAX_CONNECTIONS, files))


def mounted(app, script_name, ready_path):
    """``app`` published under ``script_name``, with ``ready_path`` answering
    with itself: the readiness check that tells our server from another.

    A ``script_name`` tells the app it is published under that path. A proxy
    may pass the part after it on (jupyter-server-proxy's ``/proxy/<port>/``)
    or the whole path (its ``/proxy/absolute/<port>/``): the app gets the part
    after it either way.
    """

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == ready_path:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [ready_path.encode()]
        if script_name:
            environ["SCRIPT_NAME"] = script_name
            path_info = environ.get("PATH_INFO", "")
            if path_info == script_name or path_info.startswith(script_name + "/"):
                environ["PATH_INFO"] = path_info[len(script_name) :]
        return app(environ, start_response)

    return wsgi


class HardenedServer(ThreadedWSGIServer):
    """werkzeug's threaded server with a connection cap and a head timeout,
    keeping its open connections so that they can be cut."""

    def __init__(
        self, host, port, app, fd, head_timeout=HEAD_TIMEOUT, max_connections=None
    ):
        super().__init__(host, port, app, handler=Handler, fd=fd)
        # accept() answers at once when the backlog is empty, which ends a
        # batch (see _handle_request_noblock). A connection accepted from it
        # is still a blocking socket on Linux; elsewhere the handler's
        # settimeout() sets its mode before it reads
        self.socket.setblocking(False)
        self.head_timeout = head_timeout
        self.max_connections = max_connections or connection_cap()
        self._connections = {}  # socket -> the thread handling it
        self._connections_lock = threading.Lock()
        self._accepted = 0  # connections handed to a thread and not yet done
        self._refused = []  # (socket, when) answered 503, closed a moment later

    def _handle_request_noblock(self):
        # socketserver's takes one connection per select(). Under a crowd the
        # accepting thread competes for the GIL with every request thread it
        # has started, and each select() is one more wait for its turn: 1,000
        # clients arriving at once reached their first byte later by a
        # select() a connection than by a batch (livestream-load --arrivals)
        for _ in range(ACCEPT_BATCH):
            try:
                request, client_address = self.get_request()
            except OSError:  # the backlog is empty (or accept failed)
                return
            if not self.verify_request(request, client_address):
                self.shutdown_request(request)
                continue
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self.shutdown_request(request)
            except BaseException:
                self.shutdown_request(request)
                raise

    def process_request(self, request, client_address):
        with self._connections_lock:
            full = self._accepted >= self.max_connections
            if not full:
                self._accepted += 1
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self):
        with self._connections_lock:
            self._accepted -= 1

    def _refuse(self, connection):
        # answered from the accepting thread without waiting for the request:
        # a thread per refused connection is what the cap is there to avoid
        with contextlib.suppress(OSError):
            _drain(connection)
            connection.sendall(_BUSY)
            connection.shutdown(socket.SHUT_WR)
        # closing now, with the request perhaps still arriving, would reset
        # the connection and lose the answer: close it once the client has
        self._refused.append((connection, time.monotonic()))

    def service_actions(self):
        # called by serve_forever() between polls
        super().service_actions()
        now, waiting = time.monotonic(), []
        for connection, since in self._refused:
            if now - since < REFUSED_LINGER and not _drain(connection):
                waiting.append((connection, since))
            else:
                connection.close()
        self._refused = waiting

    def get_request(self):
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                # out of file descriptors: the waiting connection stays
                # readable, so without a pause the loop would spin on it
                time.sleep(0.1)
            raise

    def server_close(self):
        super().server_close()
        # werkzeug calls this from __init__ too, before _refused exists
        for connection, _ in getattr(self, "_refused", ()):
            connection.close()
        self._refused = []

    def opened(self, connection):
        with self._connections_lock:
            self._connections[connection] = threading.current_thread()

    def closed(self, connection):
        with self._connections_lock:
            self._connections.pop(connection, None)

    def open_connections(self):
        """``(socket, thread)`` for each connection being handled now."""
        with self._connections_lock:
            return list(self._connections.items())


def _drain(connection):
    """Read what the client has sent so far; True once it has closed its end."""
    while True:
        try:
            data = connection.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data:
            return True


class Handler(WSGIRequestHandler):
    """Tells the server which connections are open, and times the head."""

    # werkzeug writes a chunk as four small pieces (size, CRLF, data, CRLF);
    # with Nagle's algorithm on, the kernel holds the later pieces until the
    # client acknowledges the first, which a delayed ACK can put off for 40 ms
    disable_nagle_algorithm = True

    def handle(self):
        self.server.opened(self.connection)
        try:
            super().handle()
        finally:
            self.server.closed(self.connection)

    def handle_one_request(self):
        # the head must arrive within head_timeout; past it the handler logs
        # "Request timed out" and closes the connection
        self.connection.settimeout(self.server.head_timeout)
        super().handle_one_request()

    def parse_request(self):
        ok = super().parse_request()
        # the head is in: no time limit on the body or on the stream
        self.connection.settimeout(None)
        if ok and self.request_version in ("HTTP/0.9", "HTTP/1.0"):
            # HTTP/1.0 has no chunked encoding, and its client would read the
            # chunk sizes as text: answered in HTTP/1.0 (werkzeug reads the
            # version from here), a body of unknown length ends where the
            # connection closes
            self.protocol_version = "HTTP/1.0"
        return ok

    def make_environ(self):
        environ = super().make_environ()
        if isinstance(environ["wsgi.input"], DechunkedInput):
            environ["wsgi.input"] = Dechunked(self.rfile)
        environ[CHUNKED_KEY] = self.protocol_version >= "HTTP/1.1"
        return environ

    def log_request(self, *args, **kwargs):
        # a line per request would flood the notebook cell that happens to be
        # running; errors are still logged
        pass


class BadChunking(OSError):
    """A chunked request body that breaks HTTP/1.1's rules (RFC 9112, 7.1).

    An OSError, as werkzeug's own reader raises: a view that reads the body
    catches it to answer 400.
    """


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# what may not appear in a chunk extension or a trailer field: control
# characters other than tab (a bare CR or LF would end the line elsewhere)
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Dechunked(io.RawIOBase):
    """A chunked request body, read a chunk at a time from ``rfile``.

    werkzeug's reader takes a chunk's size line for a bare number, so a chunk
    extension fails the request with 500. This one reads the size, skips the
    extension, reads past the trailer fields after the last chunk, and raises
    :class:`BadChunking` for anything else.
    """

    def __init__(self, rfile):
        self._rfile = rfile
        self._left = 0  # bytes of the current chunk still to read
        self._done = False

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._done or not len(buffer):
            return 0
        if not self._left:
            self._left = self._chunk_size()
            if not self._left:
                self._skip_trailers()
                self._done = True
                return 0
        data = self._rfile.read(min(len(buffer), self._left))
        if not data:
            raise BadChunking("the body ends inside a chunk")
        buffer[: len(data)] = data
        self._left -= len(data)
        if not self._left and self._rfile.read(2) != b"\r\n":
            raise BadChunking("a chunk's data does not end with CRLF")
        return len(data)

    def _chunk_size(self):
        line = self._line(MAX_CHUNK_LINE, "a chunk's size line")
        size, _, extension = line.partition(b";")
        size = size.rstrip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size):
            raise BadChunking(f"a chunk's size is not a hexadecimal number: {size!r}")
        if _CONTROL.search(extension):
            raise BadChunking("a chunk extension holds a control character")
        return int(size, 16)

    def _skip_trailers(self):
        # trailer fields may follow the last chunk, up to an empty line;
        # nothing here reads them
        budget = MAX_TRAILERS
        while line := self._line(budget, "the trailer section"):
            if _CONTROL.search(line):
                raise BadChunking("a trailer field holds a control character")
            budget = max(0, budget - len(line) - 2)

    def _line(self, limit, what):
        line = self._rfile.readline(limit + 2)
        if not line.endswith(b"\r\n"):
            if len(line) > limit:
                raise BadChunking(f"{what} is longer than {limit} bytes")
            raise BadChunking(f"{what} does not end with CRLF")
        return line[:-2]
