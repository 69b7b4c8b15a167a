"""Run an app on a real threaded werkzeug server, in a background thread.

Made for notebooks: ``serve()`` returns once the server answers; a server
lives until the kernel stops, so a page shown inline keeps streaming under
Run All; running a cell again replaces the servers its last run started; and
``stop()`` ends the streams that are still open instead of waiting for them.
What a server's streams and requests log as errors is kept in
``LiveServer.errors`` rather than printed into whichever cell runs then.
"""

import collections
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
import weakref
from urllib.parse import urlsplit

from flask import Flask

from . import cells
from .app import create_app
from .httpd import HEAD_TIMEOUT, HardenedServer, listen, mounted
from .inline import display
from .settings import served_at
from .state import AppState

# (host, port) -> the LiveServer this process runs there, so that a cell run
# again replaces its own server rather than failing on a port it holds itself
_servers = {}
_servers_lock = threading.Lock()

READY_TIMEOUT = 5.0
# stop() waits this long at most for the request threads to finish
STOP_WITHIN = 0.9
# how many errors LiveServer.errors keeps: the latest, the oldest dropped
# first, so that a stream failing on every request cannot fill the memory
ERRORS_KEPT = 100
# what an error looks like in LiveServer.errors; the traceback follows
ERROR_FORMAT = "[%(asctime)s] %(levelname)s in %(name)s: %(message)s"

# every LiveServer not yet collected: a record is matched to the server whose
# request thread logged it, a stopped one too while its streams wind down
_every_server = weakref.WeakSet()
_every_server_lock = threading.Lock()


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
    arrive; ``max_connections`` (by default
    :data:`~livestream.httpd.MAX_CONNECTIONS`, less if the open-file limit is
    lower) caps the connections handled at once.
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
        listener = listen(host, port)
        bound_port = listener.getsockname()[1]
        # the proxy's address for this server, and the path part of it, which
        # the app puts in front of every URL it makes
        self.proxy_url = proxy_prefix.format(port=bound_port).rstrip("/")
        script_name = urlsplit(self.proxy_url).path
        # an app from create_app() answers the names it is served under
        if getattr(app, "config", None) is not None:
            served_at(app.config, host, self.proxy_url)
        try:
            self._httpd = HardenedServer(
                host,
                bound_port,
                mounted(app, script_name, self._ready_path),
                fd=listener.fileno(),
                head_timeout=head_timeout,
                max_connections=max_connections,
            )
        finally:
            listener.close()  # the server works on its own copy of the socket
        self.port = self._httpd.port
        self._errors = collections.deque(maxlen=ERRORS_KEPT)
        with _every_server_lock:
            _every_server.add(self)
        for logger in _loggers_of(app):
            if keep_server_records not in logger.filters:
                logger.addFilter(keep_server_records)
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
        state = AppState.of(self.app)
        return len(state.open_streams) if state else 0

    @property
    def connections(self):
        """How many connections a request thread is handling now."""
        return len(self._httpd.open_connections())

    @property
    def errors(self):
        """What the server's streams and requests logged as warnings or errors,
        each a string with its traceback, the newest last (at most
        :data:`ERRORS_KEPT`). They are kept here instead of being printed, so
        that none lands in the notebook cell that happens to run."""
        return ErrorList(self._errors)

    def clear_errors(self):
        """Forget the errors kept so far."""
        self._errors.clear()

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

    def display(self, *paths, height=360, captions=None):
        """Show the page at each path inline in a notebook, side by side,
        each under its caption (``captions``: one string per page, or None).

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
            captions=captions,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<LiveServer {self.url} {state}>"


class ErrorList(list):
    """A server's errors: a list of strings, shown in a notebook one after
    another with their tracebacks, rather than as one long quoted line."""

    def _repr_pretty_(self, printer, cycle):
        printer.text("\n\n".join(self) if self else "no errors")


def keep_server_records(record):
    """A logging filter: a warning or error logged by a LiveServer's request
    thread goes to that server's ``errors`` and no further (False drops it
    before any handler prints it); every other record passes."""
    if record.levelno < logging.WARNING:
        return True
    server = _server_of(threading.current_thread())
    if server is None:
        return True
    server._errors.append(_formatter.format(record))
    return False


_formatter = logging.Formatter(ERROR_FORMAT, datefmt="%H:%M:%S")


def _server_of(thread):
    """The LiveServer one of whose connections ``thread`` is handling, if any."""
    with _every_server_lock:
        servers = list(_every_server)
    for server in servers:
        if any(t is thread for _, t in server._httpd.open_connections()):
            return server
    return None


def _loggers_of(app):
    """The loggers a server running ``app`` logs its errors to: werkzeug's
    (an exception that escapes the app, a malformed request) and Flask's
    ``app.logger`` (a view's exception, a stream's failed source).

    An app wrapped in WSGI middleware, such as :func:`livestream.pitfalls.compress`,
    is found where middleware keeps it: in the wrapper's closure, or as its
    ``app`` or ``__wrapped__``.
    """
    loggers = [logging.getLogger("werkzeug")]
    todo, seen = [(app, 0)], set()
    while todo:
        thing, depth = todo.pop()
        if id(thing) in seen or depth > 3:
            continue
        seen.add(id(thing))
        if isinstance(thing, Flask):
            # app.logger is logging.getLogger(app.name): apps of one name
            # share it, and the filter tells their servers apart by thread
            loggers.append(thing.logger)
            continue
        todo += [(inner, depth + 1) for inner in _wrapped_by(thing)]
    return loggers


def _wrapped_by(thing):
    """What WSGI middleware ``thing`` may hold the app it wraps in."""
    for name in ("app", "__wrapped__"):
        if getattr(thing, name, None) is not None:
            yield getattr(thing, name)
    for cell in getattr(thing, "__closure__", None) or ():
        # a cell whose variable is not yet assigned raises ValueError
        with contextlib.suppress(ValueError):
            yield cell.cell_contents
