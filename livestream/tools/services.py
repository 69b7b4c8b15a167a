"""Start local services on this machine: redis-server and gunicorn.

For tests, notebook 07 and the fan-out benchmark. Each ``start_*`` returns a
:class:`Service` once it answers, and ``stop()`` ends it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# gthread: a thread per connection, so a long stream holds a thread, not the
# whole worker. The sync worker class serves one request at a time and kills
# a request that runs past --timeout (30 s): every long stream would be cut.
WORKER_CLASS = "gthread"


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
    process = subprocess.Popen(
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
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        _wait_until(answers, process, "redis-server", timeout)
    except RuntimeError:
        if scratch is not None:
            scratch.cleanup()
        raise
    return Service("redis-server", process, url, scratch.cleanup if scratch else None)


def start_gunicorn(
    workers=2,
    threads=50,
    port=None,
    redis_url=None,
    timeout=20.0,
    extra=(),
    app="livestream:create_app()",
    worker_class=WORKER_CLASS,
    log=None,
):
    """gunicorn serving ``app`` (livestream's by default) with threaded workers.

    ``worker_class="gevent"`` serves each connection on a green thread
    instead; ``threads`` then bounds the connections a worker takes.
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
        *(("--threads", str(threads)) if worker_class == "gthread" else ()),
        "--worker-connections",
        str(threads),
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
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            with urllib.request.urlopen(url + "/status", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    _wait_until(answers, process, "gunicorn", timeout)
    return Service("gunicorn", process, url)
