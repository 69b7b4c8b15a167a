"""Every surface against every attack class, on every server the app runs on.

The surfaces come from the technique table (each stream a technique reads),
then the streamed answer and the live feed (testing_support.surfaces()): a
technique added to the table joins every class below, and fails the suite
until it holds. The servers are serve()'s werkzeug server and gunicorn's
gthread and gevent workers, each serving testing_support.matrix_app().

The classes: a foreign Host; a foreign Origin; a client that leaves; a slow
reader (memory stays bounded, frames stay whole); hostile messages (each
arrives exactly as it was sent; on a picture stream, each part is exactly the
JPEG drawn from the messages so far); oversized input. A client whose network
vanishes needs network namespaces of the test's own: tests/test_vanish.py
runs that class, over the same surfaces.
"""

import html
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests
from PIL import Image
from websockets.sync.client import connect as ws_connect

from livestream import mjpeg
from livestream.feed import connect, publish
from livestream.tools.services import start_gunicorn
from livestream.window import WINDOW_BYTES
from testing_support import (
    CARRIED,
    has_first_message,
    parse_sse,
    pictures,
    read_htmx,
    surfaces,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ["serve", "gthread", "gevent"]
SURFACES = surfaces()
# how soon a stream whose client left must be counted out: the issue asks
# for a quarter of a second, and a loaded machine answers /status late
NOTICE = 0.5
# the slow reader: FLOOD messages of 64 KB that the source offers while the
# client reads nothing for PAUSE s. The server may hold its stream buffer
# (4 MB), the socket's, and what a worker keeps per stream: never the backlog
FLOOD = 1200
PAUSE = 3.0
GROWTH_BOUND_MB = 40
# the longest a whole stream may take to read
READ_WITHIN = 90.0
# what a Host refusal and an oversized query look like
FOREIGN_HOST = "evil.example"
HUGE_NUMBER = "9" * 5000


class Served:
    """A matrix app on one server: its address, its processes, its Redis."""

    def __init__(self, url, pids, stop, redis_url=None):
        self.url, self.pids, self.stop = url, pids, stop
        self.redis_url = redis_url
        self.address = (urlsplit(url).hostname, urlsplit(url).port)
        self.host = urlsplit(url).netloc

    def open_streams(self):
        return requests.get(self.url + "/status", timeout=5).json()["active_streams"]

    def rss_mb(self):
        """Resident memory of the serving processes, in MB."""
        pids = self.pids()
        return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


@pytest.fixture(scope="module")
def matrix():
    """``matrix(server, kind, redis_url=None)``: matrix_app(kind) on
    ``server``, started when first asked for, once a module."""
    started = {}

    def get(server, kind, redis_url=None):
        key = (server, kind, redis_url)
        if key not in started:
            started[key] = start(server, kind, redis_url)
        return started[key]

    yield get
    for served in started.values():
        served.stop()


def start(server, kind, redis_url):
    """matrix_app(kind) on ``server``, in a process of its own (so that its
    memory is the server's alone)."""
    if server == "serve":
        return serve_in_a_process(kind, redis_url)
    service = start_gunicorn(
        workers=1,
        connections=20,
        worker_class=server,
        app=f"testing_support:matrix_app({kind!r})",
        redis_url=redis_url,
        # where testing_support is, whatever folder pytest runs in
        extra=("--chdir", str(ROOT)),
    )
    master = psutil.Process(service.process.pid)
    return Served(
        service.url,
        lambda: [child.pid for child in master.children()],
        service.stop,
        redis_url,
    )


# serve() in a process of its own: it prints its address, and serves until
# its standard input closes
SERVE = """
import sys
import livestream
from testing_support import matrix_app
server = livestream.serve(matrix_app(sys.argv[1], sys.argv[2] or None))
print(server.url, flush=True)
sys.stdin.read()
"""


def serve_in_a_process(kind, redis_url):
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, kind, redis_url or ""],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = process.stdout.readline().strip()
    assert url.startswith("http://"), "serve() did not start"

    def stop():
        process.stdin.close()
        process.wait(10)
        process.stdout.close()

    return Served(url, lambda: [process.pid], stop, redis_url)


@pytest.fixture(params=SERVERS)
def server(request):
    """Each server in turn."""
    return request.param


@pytest.fixture(params=SURFACES, ids=[surface.name for surface in SURFACES])
def surface(request):
    """Each surface in turn."""
    return request.param


@pytest.fixture
def app_on(matrix, server, surface, request):
    """``app_on(kind)``: the matrix's app of ``kind`` on this test's server,
    with a Redis behind it when the surface is the feed."""

    def get(kind):
        if not surface.redis:
            return matrix(server, kind)
        request.applymarker(pytest.mark.redis)
        return matrix(server, kind, request.getfixturevalue("redis_service").url)

    return get


# a client, by hand: what each request sends, and the head of its answer


def request_bytes(surface, served, query="", headers=(), body=None):
    """The bytes of one request for ``surface`` with ``headers`` added."""
    lines = [f"{surface.method} {surface.path}{query} HTTP/1.1"]
    if not any(header.startswith("Host:") for header in headers):
        lines.append(f"Host: {served.host}")
    lines += headers
    if surface.websocket:
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
    if surface.method == "POST":
        body = b'{"prompt": ""}' if body is None else body
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def answer_to(served, raw):
    """``(status, head, body)`` of the answer to ``raw``: the body only when
    it has a length (a refusal), else nothing of it."""
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, f"the server closed without an answer: {received!r}"
            received += data
        head, _, body = received.partition(b"\r\n\r\n")
        head = head.decode("latin-1")
        length = re.search(r"(?im)^content-length:\s*(\d+)", head)
        while length and len(body) < int(length[1]):
            data = sock.recv(65536)
            if not data:
                break
            body += data
        return int(head.split()[1]), head.lower(), body.decode("utf-8", "replace")


# reading a surface's messages, as a client of its format does


def messages_in(surface, text):
    """The messages in a whole body of ``surface``'s format, its end checked."""
    if surface.format == "text":
        return text.split("\n")[:-1]
    if surface.format == "ndjson":
        return [json.loads(line) for line in text.split("\n")[:-1]]
    if surface.format == "html":
        assert '<p id="done">' in text, text[-300:]
        items = re.findall(r'<li class="message">(.*?)</li>\n', text, re.S)
        return [html.unescape(item) for item in items]
    if surface.format == "sse":
        events = parse_sse(text)["events"]
        assert events and events[-1].get("event") == "end", text[-300:]
        return [event["data"] for event in events[:-1]]
    if surface.format == "htmx":
        # SSE whose data are HTML: each message as text once unescaped
        messages, ended = read_htmx(text)
        assert ended == "Done", text[-300:]
        return messages
    raise AssertionError(f"the matrix has no reader for the format {surface.format}")


def frames_in(body):
    """The JPEG of each part of a whole picture stream, each one a JPEG that
    Pillow decodes: a picture stream does not carry its messages, only what
    was drawn from them."""
    parts = mjpeg.parts_of(body)
    for part in parts:
        with Image.open(io.BytesIO(part)) as image:
            assert image.format == "JPEG"
            image.load()
    return parts


def sent_as(surface, messages):
    """What a reader of ``surface`` gets for ``messages``: the messages, or a
    picture stream's parts, drawn here by the same function, the end's too."""
    return pictures(messages) if surface.format == "jpeg" else list(messages)


def read_all(surface, served, count, pause=0.0, published=()):
    """Every message of ``surface`` to its end (the feed: until ``published``
    is in); with ``pause``, the client takes the first bytes, then reads
    nothing for ``pause`` s while ``during()`` samples the server."""
    if surface.websocket:
        return read_websocket(surface, served, count, pause)
    url = served.url + surface.path
    if surface.method == "POST":
        response = requests.post(
            url, json={"prompt": str(count)}, stream=True, timeout=30
        )
    else:
        response = requests.get(url, params={"count": count}, stream=True, timeout=30)
    with response:
        assert response.status_code == 200, response.text
        chunks = response.iter_content(chunk_size=None)
        body = next(chunks)
        if published:
            # the feed sends what is published once it follows the topic,
            # which its opening comment says
            while b"following" not in body:
                body += next(chunks)
            threading.Thread(
                target=publish_all, args=(served.redis_url, published), daemon=True
            ).start()
        time.sleep(pause)  # the slow reader: it reads nothing for a while
        deadline = time.monotonic() + READ_WITHIN
        for chunk in chunks:
            body += chunk
            if surface.redis and body.count(b"\nid: ") >= count:
                break
            # a feed's keep-alives would keep a lost message waited for
            assert time.monotonic() < deadline, f"still reading: {body[-200:]!r}"
    if surface.redis:
        return [event["data"] for event in parse_sse(body.decode())["events"]]
    if surface.format == "jpeg":
        return frames_in(body)
    return messages_in(surface, body.decode())


def read_websocket(surface, served, count, pause):
    url = served.url.replace("http", "ws", 1) + f"{surface.path}?count={count}"
    # a queue of one message: a client that does not read soon stops reading
    # its socket too, as a slow reader does
    with ws_connect(url, max_size=None, max_queue=1, open_timeout=10) as ws:
        got = [ws.recv(timeout=30)]
        time.sleep(pause)
        while (message := ws.recv(timeout=30)) != b"":  # empty binary: the end
            got.append(message)
    return got


def publish_all(redis_url, messages):
    client = connect(redis_url)
    for message in messages:
        publish(message, client=client)
    client.close()


# the classes


def test_a_foreign_host_is_refused(app_on, surface):
    served = app_on("carried")
    raw = request_bytes(surface, served, headers=(f"Host: {FOREIGN_HOST}",))
    status, _, body = answer_to(served, raw)
    assert status == 400
    assert FOREIGN_HOST in body and "TRUSTED_HOSTS" in body


def test_a_foreign_origin_gets_nothing_it_could_use(app_on, surface):
    served = app_on("carried")
    raw = request_bytes(surface, served, headers=("Origin: http://evil.example",))
    status, head, body = answer_to(served, raw)
    if surface.cross_site:
        # a WebSocket is read cross-site, a POST is sent cross-site: refused
        assert status == 403
        assert "ALLOWED_ORIGINS" in body
    else:
        # a GET's answer is the browser's to withhold from another site: no
        # CORS header here lets it through
        assert status == 200
        assert "access-control-allow-origin" not in head


@pytest.mark.timing
def test_a_client_that_leaves_is_counted_out(app_on, surface):
    served = app_on("stall")
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(request_bytes(surface, served))
        received = b""
        # the first message (a picture stream: its frame), or the feed's
        # opening comment
        while not has_first_message(received) and b"following" not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
        assert wait_until(lambda: served.open_streams() == 1, 5)
    assert wait_until(lambda: served.open_streams() == 0, NOTICE)


def test_a_slow_reader_holds_bounded_memory_and_whole_frames(app_on, surface):
    served = app_on("flood")
    before = served.rss_mb()
    peak = [before]
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.1):
            peak.append(served.rss_mb())

    threading.Thread(target=sample, daemon=True).start()
    try:
        published = [flood_message(n) for n in range(FLOOD)] if surface.redis else ()
        got = read_all(surface, served, FLOOD, pause=PAUSE, published=published)
    finally:
        sampling.set()
    if surface.format == "jpeg":
        # a part per message, then the end, each whole and in order: the
        # frames drawn here from the same messages, byte for byte
        assert got == sent_as(surface, (flood_message(n) for n in range(FLOOD)))
    else:
        assert len(got) == FLOOD
        # every message whole and in order: a broken frame garbles one
        assert all(message == flood_message(n) for n, message in enumerate(got))
    # the feed's window keeps the latest entries for every stream at once,
    # up to its own budget, besides what each stream may hold
    bound = GROWTH_BOUND_MB + (WINDOW_BYTES / 2**20 if surface.redis else 0)
    assert max(peak) - before < bound, f"{max(peak) - before:.0f} MB"


def flood_message(n):
    # the same as testing_support.flood's
    return f"{n:08d}" + "z" * 65_528


def test_hostile_messages_arrive_exactly(app_on, surface):
    served = app_on("carried")
    published = CARRIED if surface.redis else ()
    got = read_all(surface, served, len(CARRIED), published=published)
    # a picture stream: a JPEG per message and the end, each the frame drawn
    # from the messages so far
    assert got == sent_as(surface, CARRIED)


def oversized(surface):
    """``(query, headers, body, status, named)``: each oversized input the
    surface takes, what it must answer, and the name the answer says."""
    if surface.method == "POST":
        yield "", (), b'{"prompt": "' + b"x" * 20_000 + b'"}', 413, "ANSWER_MAX_BYTES"
        yield "", (), b"[" * 5_000 + b"]" * 5_000, 400, "ANSWER_MAX_DEPTH"
        return
    if surface.redis:
        # the feed takes an entry id where the others take numbers
        yield f"?after={HUGE_NUMBER}", (), None, 400, "after"
    else:
        yield f"?count={HUGE_NUMBER}", (), None, 400, "count"
        yield f"?interval={HUGE_NUMBER}", (), None, 400, "interval"
    if surface.format in ("sse", "htmx"):
        yield "", (f"Last-Event-ID: {HUGE_NUMBER}",), None, 400, "Last-Event-ID"
    if surface.format == "htmx":
        yield f"?keep={HUGE_NUMBER}", (), None, 400, "keep"
    if surface.websocket:
        yield f"?after={HUGE_NUMBER}", (), None, 400, "after"


def test_oversized_input_is_refused_by_name(app_on, surface):
    served = app_on("carried")
    cases = list(oversized(surface))
    assert cases, f"{surface.name} has no oversized input to refuse"
    for query, headers, body, status, named in cases:
        raw = request_bytes(surface, served, query, headers, body)
        got, _, said = answer_to(served, raw)
        assert (got, named in said) == (status, True), (query, headers, said)
        assert said.count("\n") == 1
