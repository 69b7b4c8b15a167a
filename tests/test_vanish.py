"""A client whose network silently vanishes (no FIN, no RST: Wi-Fi off, a
laptop lid closed, a NAT entry expired) is freed within the documented bound,
on serve() and on gunicorn's gthread and gevent workers.

Every stream asks the kernel to give up on a silent client: checked on a
loopback connection, anywhere. Then for real: the servers run in a network
namespace of the test's own, the client in another, joined by a veth pair
that carries the only addresses (TEST-NET-1, routed nowhere). Taking the
client's end of the pair down makes its network vanish without a packet;
each server's /status says when its streams are freed. Where namespaces
cannot be made (not root, no iproute2, a container without the right), that
test is skipped and says why.
"""

import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import requests
import simple_websocket

from livestream import create_app, tcp
from testing_support import surfaces, wait_until

# RFC 5737's TEST-NET-1, on the veth pair only: nothing routes it anywhere
SERVER_ADDRESS = "192.0.2.1"
CLIENT_ADDRESS = "192.0.2.2"
PREFIX = 30

# the servers' settings, short so the test takes seconds: an SSE stream
# writes a keep-alive every KEEPALIVE s, and a client that acknowledges
# nothing for VANISH_TIMEOUT s is dropped
KEEPALIVE = 2
VANISH_TIMEOUT = 5
# a loaded machine answers /status and schedules threads late
SLACK = 3.0
BOUND = tcp.vanish_bound(VANISH_TIMEOUT, KEEPALIVE) + SLACK

# each server's streams, every one the technique table reads: SSE writes
# only its keep-alives once the first message is out; the others write
# nothing at all (interval=60 keeps the next message past the end of the test)
STREAMS = [s.path for s in surfaces() if s.method == "GET" and not s.redis]
QUERY = "?count=3&interval=60"

# setns(2)'s flag for a network namespace (os.setns arrives in Python 3.12)
CLONE_NEWNET = 0x40000000


@pytest.fixture
def connected():
    """A TCP socket connected on loopback."""
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as sock,
    ):
        yield sock


def test_the_options_say_when_to_give_up(connected):
    tcp.drop_when_silent(connected, 30)
    assert options(connected) == {
        "SO_KEEPALIVE": 1,
        "TCP_KEEPIDLE": 10,
        "TCP_KEEPINTVL": 5,
        "TCP_KEEPCNT": 5,
        "TCP_USER_TIMEOUT": 30_000,
    }
    # probes alone, where the user timeout is missing, give up after about
    # the timeout too
    idle, interval, count = tcp.probe_times(30)
    assert 30 <= idle + interval * count <= 30 + interval
    assert tcp.vanish_bound(30, 15) == 46


def test_0_leaves_the_systems_defaults(connected):
    tcp.drop_when_silent(connected, 0)
    assert options(connected)["TCP_USER_TIMEOUT"] == 0
    assert options(connected)["SO_KEEPALIVE"] == 0


@pytest.mark.parametrize("value", ["30", -1, 0.5, 3601, True, None])
def test_a_bad_timeout_is_refused(value):
    with pytest.raises(ValueError, match="^VANISH_TIMEOUT must be"):
        create_app(VANISH_TIMEOUT=value)


def options(sock):
    """The keepalive and user-timeout options of ``sock``, by name."""
    names = {
        "SO_KEEPALIVE": socket.SOL_SOCKET,
        "TCP_KEEPIDLE": socket.IPPROTO_TCP,
        "TCP_KEEPINTVL": socket.IPPROTO_TCP,
        "TCP_KEEPCNT": socket.IPPROTO_TCP,
        "TCP_USER_TIMEOUT": socket.IPPROTO_TCP,
    }
    return {
        name: sock.getsockopt(level, getattr(socket, name))
        for name, level in names.items()
    }


def recording(app):
    """``app``, changed to keep the server's end of each request's connection
    by path, so that a test can read its options; and that dict."""
    sockets = {}
    inner = app.wsgi_app

    def record(environ, start_response):
        sockets[environ["PATH_INFO"]] = environ["werkzeug.socket"]
        return inner(environ, start_response)

    app.wsgi_app = record
    return app, sockets


def opened(stack, response):
    """``response`` once its stream runs, closed when ``stack`` closes."""
    stack.callback(response.close)
    assert response.status_code == 200
    assert response.raw.read(1)
    return response


def gives_up_after(sock):
    """The user timeout on ``sock`` in seconds, once keepalive is on too."""
    found = options(sock)
    assert found["SO_KEEPALIVE"] == 1
    return found["TCP_USER_TIMEOUT"] / 1000


def test_every_stream_asks_the_kernel_to_give_up(live):
    release = threading.Event()

    def waiting(prompt):
        # an answer that stays open while the test looks at its socket
        yield "thinking"
        release.wait(10)

    app, sockets = recording(create_app(answer=waiting, VANISH_TIMEOUT=7, TESTING=True))
    server = live(app=app)
    origin = {"Origin": server.url}
    query = {"count": 3, "interval": 30}
    paths = ["/stream/text", "/stream/ndjson", "/stream/html", "/stream/sse"]
    with contextlib.ExitStack() as stack:
        stack.callback(release.set)
        for path in paths:
            opened(stack, requests.get(server.url + path, params=query, stream=True))
        answer = server.url + "/stream/answer"
        asked = {"json": {"prompt": "a"}, "headers": origin, "stream": True}
        opened(stack, requests.post(answer, **asked))
        ws_url = server.url.replace("http", "ws", 1) + "/stream/ws?count=3&interval=30"
        ws = simple_websocket.Client.connect(ws_url, headers=origin)
        stack.callback(ws.close)
        ws.receive(timeout=10)
        for path in [*paths, "/stream/answer", "/stream/ws"]:
            assert gives_up_after(sockets[path]) == 7, path


@pytest.mark.redis
def test_the_feed_asks_the_kernel_to_give_up(live, redis_service, redis_client):
    app = create_app(REDIS_URL=redis_service.url, VANISH_TIMEOUT=7, TESTING=True)
    app, sockets = recording(app)
    server = live(app=app)
    with contextlib.ExitStack() as stack:
        url = server.url + "/stream/feed"
        opened(stack, requests.get(url, stream=True))
        assert gives_up_after(sockets["/stream/feed"]) == 7


def run(*command):
    """Run ``ip`` (or another tool) and raise with its stderr if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise OSError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def join_namespace(name):
    """Move the calling thread into network namespace ``name``: the sockets
    it makes from then on live there (the rest of the process stays put)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {name}: {os.strerror(error)}")
    finally:
        os.close(fd)


def inside(name, call, *args):
    """``call(*args)`` on a thread of its own inside namespace ``name``."""
    outcome = {}

    def target():
        try:
            join_namespace(name)
            outcome["value"] = call(*args)
        except BaseException as error:  # raised again in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name=f"in {name}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Lab:
    """Two network namespaces of our own, a server's and a client's, joined
    by a veth pair; servers in the first, client sockets made in the second."""

    def __init__(self, logs):
        self.logs = logs
        tag = os.getpid()
        self.server_ns, self.client_ns = f"lsv-srv-{tag}", f"lsv-cli-{tag}"
        self.client_end = "lsv-cli"
        self.servers = []  # (process, its log file)
        self.sockets = []
        run("ip", "netns", "add", self.server_ns)
        try:
            run("ip", "netns", "add", self.client_ns)
            # the pair is made inside the server's namespace, so no interface
            # of the machine's own ever appears, even for a moment
            run(
                *("ip", "-n", self.server_ns, "link", "add", "lsv-srv"),
                *("type", "veth", "peer", "name", self.client_end),
                *("netns", self.client_ns),
            )
            for ns, end, address in (
                (self.server_ns, "lsv-srv", SERVER_ADDRESS),
                (self.client_ns, self.client_end, CLIENT_ADDRESS),
            ):
                run("ip", "-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", end)
                run("ip", "-n", ns, "link", "set", end, "up")
                run("ip", "-n", ns, "link", "set", "lo", "up")
            # both ways in must work: a process started inside, a thread moved in
            run("ip", "netns", "exec", self.server_ns, "true")
            inside(self.client_ns, lambda: None)
        except BaseException:
            self.close()
            raise

    def start(self, kind, port, env):
        """Start a server of ``kind`` (serve, gthread or gevent) in the
        server's namespace on ``port``, with ``env`` added to ours."""
        if kind == "serve":
            command = [
                sys.executable,
                "-c",
                "import threading; from livestream import serve; "
                f"serve(host={SERVER_ADDRESS!r}, port={port}); "
                "threading.Event().wait()",
            ]
        else:
            command = [
                *(sys.executable, "-m", "gunicorn", "--worker-class", kind),
                # one worker: its /status counts every stream of the server
                *("--workers", "1", "--worker-connections", "50"),
                *(("--threads", "50") if kind == "gthread" else ()),
                *("--bind", f"{SERVER_ADDRESS}:{port}", "--graceful-timeout", "1"),
                *("--log-level", "warning", "livestream:create_app()"),
            ]
        log = open(self.logs / f"{kind}-{port}.log", "w+")  # noqa: SIM115
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.server_ns, *command],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.servers.append((process, log))
        if not wait_until(lambda: self.status(port) is not None, 30):
            log.seek(0)
            raise AssertionError(f"{kind} on port {port} never answered:\n{log.read()}")

    def status(self, port):
        """The open streams of the server on ``port``, or None if it does not
        answer: asked from inside the server's namespace."""

        def ask():
            url = f"http://{SERVER_ADDRESS}:{port}/status"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return json.loads(response.read())
            except OSError:
                return None

        answer = inside(self.server_ns, ask)
        return None if answer is None else answer["active_streams"]

    def open_stream(self, port, path):
        """Open ``path`` on the server from the client's namespace and read
        until its body has begun; the socket is kept, and never read again."""
        head = [
            f"GET {path} HTTP/1.1",
            f"Host: {SERVER_ADDRESS}:{port}",
            "Accept: text/event-stream",
        ]
        if path.startswith("/stream/ws"):
            head += [
                f"Origin: http://{SERVER_ADDRESS}:{port}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
            ]
        request = ("\r\n".join(head) + "\r\n\r\n").encode()
        sock = inside(self.client_ns, socket.create_connection, (SERVER_ADDRESS, port))
        self.sockets.append(sock)
        sock.settimeout(10)
        sock.sendall(request)
        received = b""
        while not received.partition(b"\r\n\r\n")[2]:  # the head, then a byte
            data = sock.recv(65536)
            assert data, f"{path} on port {port} closed: {received!r}"
            received += data
        status = received.split(b"\r\n", 1)[0]
        assert status.split()[1] in (b"101", b"200"), (path, received[:300])

    def vanish(self):
        """Take the client's end of the pair down: from now on its packets
        go nowhere and nothing tells the server (no FIN, no RST)."""
        run("ip", "-n", self.client_ns, "link", "set", self.client_end, "down")

    def close(self):
        """Stop the servers, drop the client's sockets and both namespaces
        (the veth pair goes with them)."""
        for process, log in self.servers:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            log.close()
        for sock in self.sockets:
            sock.close()
        for ns in (self.client_ns, self.server_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def make_lab(logs):
    """A Lab, or a skip that says why namespaces cannot be made here."""
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux's")
    if os.geteuid() != 0:
        pytest.skip("making network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("no ip command: install iproute2 to make network namespaces")
    try:
        return Lab(logs)
    except OSError as error:
        pytest.skip(f"cannot make a network namespace and veth pair here: {error}")


# the servers, each on a port of its own in the server's namespace; the last
# has the fix turned off, to show that it is the fix that frees the others
SERVERS = {
    "serve": ("serve", 8001, VANISH_TIMEOUT),
    "gthread": ("gthread", 8002, VANISH_TIMEOUT),
    "gevent": ("gevent", 8003, VANISH_TIMEOUT),
    "serve, VANISH_TIMEOUT=0": ("serve", 8004, 0),
}
# how long the one with the fix off is watched: twice the bound
CONTROL_WAIT = 2 * BOUND


@pytest.fixture(scope="module")
def vanished(tmp_path_factory):
    """By server: the seconds after the client vanished at which each of its
    streams was freed; a stream still open at the end of the watch has none."""
    lab = make_lab(tmp_path_factory.mktemp("vanish"))
    try:
        for name, (kind, port, timeout) in SERVERS.items():
            env = {
                "LIVESTREAM_SSE_KEEPALIVE": str(KEEPALIVE),
                "LIVESTREAM_VANISH_TIMEOUT": str(timeout),
                "LIVESTREAM_TRUSTED_HOSTS": SERVER_ADDRESS,
            }
            lab.start(kind, port, env)
            for path in STREAMS:
                lab.open_stream(port, path + QUERY)
            assert wait_until(lambda p=port: lab.status(p) == len(STREAMS), 10), name
        lab.vanish()
        vanished_at = time.monotonic()
        freed = {name: [] for name in SERVERS}
        while time.monotonic() - vanished_at < CONTROL_WAIT:
            now = time.monotonic() - vanished_at
            for name, (_, port, _) in SERVERS.items():
                open_now = lab.status(port)
                if open_now is not None:
                    freed[name] += [now] * (len(STREAMS) - open_now - len(freed[name]))
            time.sleep(0.25)
        yield freed
    finally:
        lab.close()


@pytest.mark.timing
@pytest.mark.parametrize("name", ["serve", "gthread", "gevent"])
def test_a_vanished_client_is_freed_within_the_bound(vanished, name):
    freed = vanished[name]
    assert len(freed) == len(STREAMS), (
        f"{len(STREAMS) - len(freed)} of {STREAMS} still open after "
        f"{CONTROL_WAIT:.0f} s; freed at {freed}"
    )
    assert max(freed) <= BOUND, f"freed at {freed} s, past the bound of {BOUND} s"


@pytest.mark.timing
def test_without_the_timeout_a_vanished_client_is_never_noticed(vanished):
    # the same streams on a server with the fix off: still open at the end,
    # so it is the fix that frees the others, not the link going down
    assert vanished["serve, VANISH_TIMEOUT=0"] == []
