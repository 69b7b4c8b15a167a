"""Start local services on this machine: redis-server, gunicorn, a Jupyter
Server with jupyter-server-proxy, and nginx.

For tests, notebooks 04, 06 and 07 and the fan-out benchmark. Each
``start_*`` returns a :class:`Service` once it answers, and ``stop()`` ends it.
Started from a notebook cell, a service runs until the kernel ends (the
kernel ends its child processes as it shuts down) or the cell runs again
(see :mod:`livestream.cells`).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from .. import cells

# gevent: each connection on a green thread. In the fan-out runs (see
# docs/measurements.md) it used less CPU than gthread for the same deliveries
# and met the 5,000-client target that gthread missed: a message wakes every
# one of a gthread worker's OS threads. gthread (a thread per connection) is
# close and still works. The sync worker class serves one request at a time
# and kills a request that runs past --timeout (30 s): every long stream would
# be cut.
WORKER_CLASS = "gevent"


class Service:
    """A started server process: its URL, and how to stop it."""

    def __init__(self, name, process, url, cleanup=None):
        self.name = name
        self.process = process
        self.url = url
        self._cleanup = cleanup

    def stop(self, timeout=10.0):
        """Ask the process to stop, and kill it if it has not within ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "running" if self.process.poll() is None else "stopped"
        return f"<{self.name} {self.url} {state}>"


def free_port():
    """A port that is free now (a child process binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(ready, process, what, timeout):
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def answering(port, request=b"", reply=b""):
    """A readiness probe: whether 127.0.0.1:``port`` takes a connection and,
    given a ``request``, answers it with bytes that begin with ``reply``."""

    def probe():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if not request:
                    return True
                conn.sendall(request)
                return conn.recv(16).startswith(reply)
        except OSError:
            return False

    return probe


def _started(name, command, url, ready, timeout, cleanup=None, **popen):
    """Run ``command`` as the :class:`Service` ``name`` once ``ready()``;
    ``cleanup`` runs when it stops, or at once if it never answers."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, **popen)
    try:
        _wait_until(ready, process, name, timeout)
    except RuntimeError:
        if cleanup is not None:
            cleanup()
        raise
    service = Service(name, process, url, cleanup)
    cells.started(service)
    return service


def run_nginx(name, config, port, timeout, ready=None):
    """nginx with the config ``config(scratch)`` gives, ``scratch`` being a
    folder of its own for its pid and temporary files, as the :class:`Service`
    ``name`` on ``port``; ready when ``ready()`` (by default: it takes a
    connection). Without nginx, FileNotFoundError says how to install it."""
    binary = nginx_path()
    if binary is None:
        raise FileNotFoundError(NGINX_MISSING)
    scratch = tempfile.TemporaryDirectory(prefix=f"livestream-{name}-")
    path = os.path.join(scratch.name, "nginx.conf")
    with open(path, "w") as file:
        file.write(config(scratch.name))
    return _started(
        name,
        # -e: the error log from the start, before the config names one
        [binary, "-p", scratch.name, "-c", path, "-e", "stderr"],
        f"http://127.0.0.1:{port}",
        ready or answering(port),
        timeout,
        cleanup=scratch.cleanup,
        stdout=subprocess.DEVNULL,
    )


def start_redis(port=None, directory=None, timeout=10.0):
    """A redis-server on 127.0.0.1 that keeps nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(
            "redis-server is not installed: on Debian, apt-get install redis-server"
        )
    port = port or free_port()
    # a folder of its own, removed when the service stops
    scratch = None
    if directory is None:
        scratch = tempfile.TemporaryDirectory(prefix="livestream-redis-")
        directory = scratch.name
    return _started(
        "redis-server",
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        f"redis://127.0.0.1:{port}/0",
        answering(port, b"PING\r\n", b"+PONG"),
        timeout,
        cleanup=scratch.cleanup if scratch else None,
        stdout=subprocess.DEVNULL,
    )


def start_gunicorn(
    workers=2,
    connections=50,
    port=None,
    redis_url=None,
    timeout=20.0,
    extra=(),
    app="livestream:create_app()",
    worker_class=WORKER_CLASS,
    log=None,
):
    """gunicorn serving ``app`` (livestream's by default) on ``WORKER_CLASS``.

    ``connections`` is how many connections each worker takes at once
    (``--worker-connections``): each is served on a green thread under
    ``gevent``; under ``worker_class="gthread"`` each needs a thread of its
    own, so the worker gets as many ``--threads``.
    ``log`` is a file for gunicorn's own log (by default this one's stderr).
    """
    port = port or free_port()
    env = dict(os.environ)
    if redis_url:
        env["LIVESTREAM_REDIS_URL"] = redis_url
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        worker_class,
        "--workers",
        str(workers),
        # connections a worker takes at once: one thread (or green thread)
        # each, so a worker that is full leaves the next to the others
        *(("--threads", str(connections)) if worker_class == "gthread" else ()),
        "--worker-connections",
        str(connections),
        # so no connection is left over to wait idle for a next request: a
        # response closes its connection. Said outright, gthread does the
        # same without warning "No keepalived connections can be handled"
        "--keep-alive",
        "0",
        # gunicorn answers a request line longer than 4094 bytes itself, with
        # an HTML page; up to its most, 8190, a long query reaches the app,
        # which says in one line which parameter is wrong
        "--limit-request-line",
        "8190",
        "--bind",
        f"127.0.0.1:{port}",
        # open streams get this long to end before a stopping worker is killed
        "--graceful-timeout",
        "2",
        "--log-level",
        "warning",
        *extra,
        app,
    ]
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            with urllib.request.urlopen(url + "/status", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    return _started("gunicorn", command, url, answers, timeout, env=env, stderr=log)


class JupyterServer(Service):
    """A Jupyter Server: its token, and the addresses of its proxy.

    ``url`` is where a script on this machine reaches it; ``public_url`` is
    where a browser does (behind a hub, a path on the hub's host).
    """

    def __init__(self, process, url, token, cleanup=None, public_url=None):
        super().__init__("jupyter-server", process, url, cleanup)
        self.token = token
        self.public_url = url if public_url is None else public_url

    def stop(self, timeout=10.0):
        """Stop the server, if this process started it."""
        if self.process is not None:
            super().stop(timeout)

    def proxied(self, port):
        """Where a script reaches ``port`` through the proxy."""
        return f"{self.url}/proxy/{port}"

    @property
    def headers(self):
        """The header that authenticates a request from a script."""
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def proxy_prefix(self, absolute=False):
        """Where jupyter-server-proxy publishes a port: a ``proxy_prefix`` for
        ``serve()``. ``absolute`` picks ``/proxy/absolute/{port}``, which passes
        the whole path on instead of the part after the prefix."""
        mode = "/proxy/absolute/{port}" if absolute else "/proxy/{port}"
        return self.public_url + mode

    def with_token(self, url):
        """``url`` with the token in its query: a browser that opens it gets
        the server's login cookie, which its later requests carry.

        For a browser this process drives: a path (``public_url`` is one when
        the server is the notebook's own) is taken as one on this server.
        """
        url = urllib.parse.urljoin(self.url, url)
        if not self.token:
            return url
        return f"{url}{'&' if '?' in url else '?'}token={self.token}"

    def for_browser(self, url):
        """``url`` for the learner's browser: with the token for a server
        started here, as it is for the server the browser is logged in to."""
        return url if self.process is None else self.with_token(url)

    def __repr__(self):
        state = (
            "running"
            if self.process is None or self.process.poll() is None
            else "stopped"
        )
        return f"<{self.name} {self.url} {state}>"


def start_jupyter_server(base_url="/", token=None, port=None, timeout=60.0):
    """A Jupyter Server on 127.0.0.1 with jupyter-server-proxy, as JupyterHub
    and Binder run one for each user (a hub's ``base_url`` is ``/user/<name>/``).
    """
    try:
        import jupyter_server_proxy  # noqa: F401  (only: is it there?)
    except ImportError:
        raise ImportError(
            "jupyter-server-proxy is not installed: pip install 'livestream[tutorial]'"
        ) from None
    port = port or free_port()
    token = token or secrets.token_hex(16)
    # config, runtime files and the file browser's root of its own, so that
    # the machine's Jupyter settings do not change what the server does
    scratch = tempfile.TemporaryDirectory(prefix="livestream-jupyter-")
    config = os.path.join(scratch.name, "jupyter_server_config.json")
    with open(config, "w") as file:
        json.dump(
            {"ServerApp": {"jpserver_extensions": {"jupyter_server_proxy": True}}}, file
        )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": scratch.name,
        "JUPYTER_RUNTIME_DIR": scratch.name,
    }
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--config={config}",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.root_dir={scratch.name}",
        f"--IdentityProvider.token={token}",
        "--allow-root",
    ]
    # its log goes to a file: a notebook cell or a test shows it only if the
    # server does not start
    log_path = os.path.join(scratch.name, "server.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}" + base_url.rstrip("/")
    service = JupyterServer(process, url, token, scratch.cleanup)
    service.runtime_dir = scratch.name  # where it lists itself, for its kernels

    def answers():
        request = urllib.request.Request(url + "/api/status", headers=service.headers)
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_until(answers, process, "jupyter-server", timeout)
    except RuntimeError as error:
        with open(log_path, errors="replace") as log:
            tail = log.read()[-2000:]
        service.stop()
        raise RuntimeError(f"{error}; its log ends:\n{tail}") from None
    cells.started(service)
    return service


NGINX_CONFIG = """\
daemon off;
worker_processes 1;
pid {scratch}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {scratch}/client_body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            # as gunicorn's deployment docs proxy to an app; nginx's defaults
            # otherwise, proxy_buffering on and proxy_http_version 1.0 among
            # them, unless start_nginx() is told
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Host $http_host;
            proxy_redirect off;
            proxy_pass {upstream};
            proxy_http_version {http_version};
            proxy_buffering {buffering};
            {gzip}
        }}
    }}
}}
"""
# what nginx asks the app for by default: an HTTP/1.0 request, so the app
# answers without chunks and nginx, buffering, passes the body on a whole
# buffer (4 KB) at a time
NGINX_HTTP_VERSION = "1.0"


NGINX_MISSING = "nginx is not installed: on Debian, apt-get install nginx"


def nginx_path():
    """nginx on PATH, else where Debian puts it (/usr/sbin), which a user's
    PATH may lack; None when this machine has none."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def start_nginx(
    upstream,
    http_version=NGINX_HTTP_VERSION,
    buffering=True,
    gzip_types=(),
    port=None,
    timeout=10.0,
):
    """nginx in front of ``upstream`` (``http://host:port``), configured as
    gunicorn's deployment docs show it: ``proxy_pass`` and a few headers,
    nginx's defaults for the rest.

    Measured with nginx 1.22 (lesson 06, ``tests/test_pitfalls.py``): with
    those defaults, ``proxy_buffering on`` and ``proxy_http_version 1.0``, a
    slow stream reaches the client a whole buffer (4 KB) at a time, a short
    one only at its end, unless it says ``X-Accel-Buffering: no``.
    ``buffering=False`` (``proxy_buffering off``) passes every stream on as it
    comes. With ``http_version="1.1"`` the app answers in chunks and nginx
    passes most of them on as they come; ``gzip_types`` (Debian's default
    config compresses text/html) holds a response of those types to its end
    again.
    """
    if http_version not in ("1.0", "1.1"):
        raise ValueError(f"http_version must be '1.0' or '1.1', not {http_version!r}")
    port = port or free_port()
    return run_nginx(
        "nginx",
        lambda scratch: NGINX_CONFIG.format(
            scratch=scratch,
            port=port,
            upstream=upstream,
            http_version=http_version,
            buffering="on" if buffering else "off",
            gzip=f"gzip on; gzip_types {' '.join(gzip_types)};" if gzip_types else "",
        ),
        port,
        timeout,
    )
