"""Run an app on a real threaded werkzeug server, in a background thread.

Made for notebooks: ``serve()`` returns once the server answers; a server
lives until the kernel stops, so a page shown inline keeps streaming under
Run All; running a cell again replaces the servers its last run started; and
``stop()`` ends the streams that are still open instead of waiting for them.
"""

import contextlib
import errno
import html
import os
import resource
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from . import cells
from .app import create_app
from .streams import Livestream

# (host, port) -> the LiveServer this process runs there, so that a cell run
# again replaces its own server rather than failing on a port it holds itself
_servers = {}
_servers_lock = threading.Lock()

READY_TIMEOUT = 5.0
# stop() waits this long at most for the request threads to finish
STOP_WITHIN = 0.9
# seconds a client gets to send a request's line and headers; one that sends
# them slower (or never) is cut off, so it cannot hold a thread for ever. A
# stream, once it runs, has no time limit
HEAD_TIMEOUT = 10.0
# connections handled at once; past it a new connection gets 503 at once,
# long before the process runs out of file descriptors
MAX_CONNECTIONS = 2000
# open files kept free for everything else the process opens
SPARE_FILES = 64


def serve(
    app=None,
    *,
    host="127.0.0.1",
    port=0,
    proxy_prefix=None,
    head_timeout=HEAD_TIMEOUT,
    max_connections=None,
):
    """Serve ``app`` (by default ``create_app()``) and return once it answers.

    ``port=0`` picks a free port. A port that this process already serves is
    taken over: the server there is stopped first. In JupyterLab and Notebook
    7, a cell run again first stops the servers its previous run started (see
    :mod:`livestream.cells`), so an exercise cell can be changed and run again
    without piling up servers; every other server runs until ``stop()`` or
    the end of the kernel.

    ``proxy_prefix`` (else ``$LIVESTREAM_PROXY_PREFIX``) is where a proxy in
    front of the server, such as jupyter-server-proxy on JupyterHub or Binder,
    publishes it, for example ``"/user/me/proxy/{port}"``: the app's URLs
    and ``display()`` then go through the proxy.

    ``head_timeout`` (seconds) bounds how long a request's head may take to
    arrive; ``max_connections`` (by default MAX_CONNECTIONS, less if the
    open-file limit is lower) caps the connections handled at once.
    """
    if app is None:
        app = create_app()
    cells.stop_last_run()
    if port:
        with _servers_lock:
            old = _servers.pop((host, port), None)
        if old is not None:
            old.stop()
    if proxy_prefix is None:
        proxy_prefix = os.environ.get("LIVESTREAM_PROXY_PREFIX", "")
    server = LiveServer(app, host, port, proxy_prefix, head_timeout, max_connections)
    with _servers_lock:
        _servers[server.host, server.port] = server
    cells.started(server)
    return server


class LiveServer:
    """A werkzeug server running ``app`` in a daemon thread; see :func:`serve`."""

    def __init__(
        self,
        app,
        host="127.0.0.1",
        port=0,
        proxy_prefix="",
        head_timeout=HEAD_TIMEOUT,
        max_connections=None,
    ):
        self.app = app
        self.host = host
        self._ready_path = f"/_livestream/ready/{secrets.token_hex(8)}"
        listener = _listen(host, port)
        bound_port = listener.getsockname()[1]
        # the proxy's address for this server, and the path part of it, which
        # the app puts in front of every URL it makes
        self.proxy_url = proxy_prefix.format(port=bound_port).rstrip("/")
        script_name = urlsplit(self.proxy_url).path
        trust_hosts(app, host, urlsplit(self.proxy_url).hostname)
        try:
            self._httpd = _Server(
                host,
                bound_port,
                _answer_ready(app, self._ready_path, script_name),
                fd=listener.fileno(),
                head_timeout=head_timeout,
                max_connections=max_connections or connection_cap(),
            )
        finally:
            listener.close()  # the server works on its own copy of the socket
        self.port = self._httpd.port
        self._error = None
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"livestream:{self.port}", daemon=True
        )
        self._thread.start()
        self._wait_until_ready()

    @property
    def url(self):
        """The server's address, for a browser on this machine."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
            self.host, self.host
        )
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def running(self):
        """Whether the server still serves."""
        return not self._stopped and self._thread.is_alive()

    @property
    def active_streams(self):
        """How many streams the app has open now (0 for an app not from create_app)."""
        state = Livestream.of(self.app)
        return len(state.open_streams) if state else 0

    @property
    def connections(self):
        """How many connections a request thread is handling now."""
        return len(self._httpd.open_connections())

    def _run(self):
        try:
            # a short poll interval lets stop() return quickly
            self._httpd.serve_forever(poll_interval=0.1)
        except BaseException as error:  # carried back to the caller
            self._error = error

    def _wait_until_ready(self):
        # the token tells our server apart from anything else on the port
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + self._ready_path, timeout=READY_TIMEOUT) as r:
                answer = r.read()
        except (OSError, urllib.error.URLError) as error:
            self.stop()
            raise RuntimeError(f"the server on port {self.port} did not answer") from (
                self._error or error
            )
        if answer != self._ready_path.encode():
            self.stop()
            raise RuntimeError(f"something else answered on port {self.port}")

    def stop(self):
        """Stop serving and cut the open streams; calling it again does nothing."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        deadline = time.monotonic() + STOP_WITHIN
        if self._thread.is_alive():
            self._httpd.shutdown()
        else:
            self._httpd.server_close()
        # the request threads are still streaming: shutting their sockets ends
        # each response for the browser now, and each stream notices within
        # a moment and lets its thread finish
        connections = self._httpd.open_connections()
        for connection, _ in connections:
            # the client may have closed it already
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with _servers_lock:
            if _servers.get((self.host, self.port)) is self:
                del _servers[self.host, self.port]

    def display(self, *paths, height=360):
        """Show the page at each path inline in a notebook, side by side.

        See :func:`display`; a path may also be a whole URL, to show another
        server's page beside this one's.
        """
        base = self.proxy_url or self.url
        return display(
            *(
                path if "://" in path else base + "/" + path.lstrip("/")
                for path in paths or ["/xhr"]
            ),
            height=height,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<LiveServer {self.url} {state}>"


def display(*urls, height=360):
    """Show the page at each URL inline in a notebook, side by side.

    Each page is asked for its compact form (``embed=1``: no navigation, a
    small title, the readout first), and gets an equal share of the width.
    """
    return InlinePages(urls, height)


class InlinePages:
    """Pages shown inline, side by side in equal shares of the width."""

    def __init__(self, urls, height=360):
        self.urls = [_with_query(url, "embed=1") for url in urls]
        self.height = height

    def _repr_html_(self):
        # min-width: 0 lets each frame shrink to its share instead of
        # pushing the others out of the cell
        frames = "".join(
            f'<iframe src="{html.escape(url)}" title="{html.escape(url)}" '
            f'style="flex: 1 1 0; min-width: 0; height: {int(self.height)}px; '
            'border: 1px solid #ccc"></iframe>'
            for url in self.urls
        )
        return f'<div style="display: flex; gap: 0.5rem; width: 100%">{frames}</div>'

    def __repr__(self):
        return "\n".join(self.urls)


def _with_query(url, pair):
    """``url`` with ``pair`` added to its query string."""
    path, _, fragment = url.partition("#")
    path += ("&" if "?" in path else "?") + pair
    return f"{path}#{fragment}" if fragment else path


def _listen(host, port):
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
    return max(1, min(MAX_CONNECTIONS, soft - SPARE_FILES))


def trust_hosts(app, *hosts):
    """Add ``hosts`` to a Flask app's TRUSTED_HOSTS, unless it trusts any Host."""
    config = getattr(app, "config", None)
    if config is None or config.get("TRUSTED_HOSTS") is None:
        return
    trusted = list(config["TRUSTED_HOSTS"])
    # a server on every interface has no one name to add: TRUSTED_HOSTS
    # lists the names it is reached by
    for host in hosts:
        if host and host not in ("0.0.0.0", "::") and host not in trusted:
            trusted.append(host)
    config["TRUSTED_HOSTS"] = trusted


def _answer_ready(app, path, script_name=""):
    """Wrap ``app`` so that ``path`` answers with itself: the readiness check.

    A ``script_name`` tells the app it is published under that path. A proxy
    may pass the part after it on (jupyter-server-proxy's ``/proxy/<port>/``)
    or the whole path (its ``/proxy/absolute/<port>/``): the app gets the part
    after it either way.
    """

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == path:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [path.encode()]
        if script_name:
            environ["SCRIPT_NAME"] = script_name
            path_info = environ.get("PATH_INFO", "")
            if path_info == script_name or path_info.startswith(script_name + "/"):
                environ["PATH_INFO"] = path_info[len(script_name) :]
        return app(environ, start_response)

    return wsgi


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server, keeping its open connections so that
    ``stop()`` can cut them."""

    def __init__(self, host, port, app, fd, head_timeout, max_connections):
        super().__init__(host, port, app, handler=_Handler, fd=fd)
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        self._connections = {}  # socket -> the thread handling it
        self._connections_lock = threading.Lock()
        self._accepted = 0  # connections handed to a thread and not yet done
        self._refused = []  # (socket, when) answered 503, closed a moment later

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


_BUSY_TEXT = b"the server is handling as many connections as it can; try again\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_BUSY_TEXT)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n" + _BUSY_TEXT
)
# how long a refused connection stays open at most for its client to close it
REFUSED_LINGER = 2.0


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


class _Handler(WSGIRequestHandler):
    """Tells the server which connections are open."""

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
        return ok

    def log_request(self, *args, **kwargs):
        # a line per request would flood the notebook cell that happens to be
        # running; errors are still logged
        pass
