"""Clients nobody here wrote read every stream and get exactly what was sent.

Our own readers (``testing_support.parse_sse``, the pages' scripts) agree with
our framing because we wrote both; these clients were written elsewhere, each
after its own reading of a format: the ``eventsource`` npm package (the WHATWG
parser, run by Node), httpx-sse, python-websockets, and httpx's lines. Each
reads the hostile messages its format carries and must get each one whole,
once, in order, with its id, nothing else, and then the stream's end.

The Python clients come with the test extra; the npm package is installed in
a scratch folder once a session, and its tests skip, saying why, where Node or
npm cannot.
"""

import json
import shutil
import subprocess
import threading

import httpx
import httpx_sse
import pytest
import websockets
from websockets.sync.client import connect

from livestream import create_app
from livestream.feed import TOPIC, publish, stream_key
from testing_support import HOSTILE, REFUSED, parse_sse

# the eventsource majors whose API the reader below uses (ESM,
# ``{ EventSource }``, the same parser), by the oldest Node each runs on:
# Debian 12's own nodejs is 18
EVENTSOURCE = {20: "eventsource@^4", 18: "eventsource@^3"}

# a page's EventSource, as a script for Node: what it printed is what a page
# would have shown. An "error" is a stream that broke off, which EventSource
# would silently reconnect: it is reported rather than retried.
READER_JS = """\
import { EventSource } from "eventsource";

const [url, last] = process.argv.slice(2);
const events = [];
const source = new EventSource(url);
let done = false;

function finish() {
  if (done) return;
  done = true;
  source.close();
  process.stdout.write(JSON.stringify(events));
}

source.addEventListener("message", (event) => {
  events.push(["message", event.data, event.lastEventId]);
  if (event.data === last) finish();
});
for (const name of ["end", "failure"]) {
  source.addEventListener(name, (event) => {
    events.push([name, event.data, event.lastEventId]);
    finish();
  });
}
source.addEventListener("error", (event) => {
  events.push(["error", String(event.message), ""]);
  finish();
});
"""


def kept(kind):
    """The hostile messages that ``kind`` carries, between two plain ones."""
    inner = [message for name, message in HOSTILE.items() if name not in REFUSED[kind]]
    return ["before", *inner, "after"]


def messages_app(messages, **config):
    return create_app(lambda count, interval: iter(messages), TESTING=True, **config)


@pytest.fixture(scope="session")
def eventsource_reader(tmp_path_factory):
    """The path of a Node script that reads a stream with the ``eventsource``
    package, installed in a scratch folder beside it."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("the eventsource npm client needs node and npm on PATH")
    version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    fits = [
        package for oldest, package in sorted(EVENTSOURCE.items()) if major >= oldest
    ]
    if not fits:
        pytest.skip(f"the eventsource npm client needs Node 18 or later, not {version}")
    package = fits[-1]  # the newest this Node runs
    folder = tmp_path_factory.mktemp("eventsource")
    install = ["npm", "install", "--prefix", folder, "--no-save", "--no-audit"]
    install += ["--no-fund", "--loglevel=error", package]
    try:
        result = subprocess.run(
            install, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {package} took more than 300 s")
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"npm install {package} failed: {why}")
    reader = folder / "reader.mjs"  # beside node_modules, where import looks
    reader.write_text(READER_JS)
    return reader


def read_with_eventsource(reader, url, last=None):
    """``(type, data, lastEventId)`` of each event the npm package dispatched
    until the end event, or the message ``last``."""
    command = ["node", reader, url, *([last] if last is not None else [])]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [tuple(event) for event in json.loads(result.stdout)]


def read_with_httpx_sse(url, last=None):
    """``(type, data, id)`` of each event httpx-sse yielded until the end
    event, or the message ``last``."""
    events = []
    with (
        httpx.Client(timeout=30) as client,
        httpx_sse.connect_sse(client, "GET", url) as source,
    ):
        for event in source.iter_sse():
            events.append((event.event, event.data, event.id))
            if event.event in ("end", "failure") or event.data == last:
                break
    return events


@pytest.fixture(params=["eventsource", "httpx-sse"])
def read_sse(request):
    """Each SSE client in turn: ``read_sse(url, last=None)`` is the list of
    ``(type, data, id)`` it got; the id only for messages."""
    if request.param == "httpx-sse":
        read = read_with_httpx_sse
    else:
        reader = request.getfixturevalue("eventsource_reader")

        def read(url, last=None):
            return read_with_eventsource(reader, url, last)

    def read_sse(url, last=None):
        # the end has no id of its own, and the clients disagree on what it
        # shows: the spec's last id (httpx-sse) or none (the npm package)
        return [
            (kind, data, id if kind == "message" else None)
            for kind, data, id in read(url, last)
        ]

    return read_sse


def test_sse_arrives_exactly(live, read_sse):
    messages = kept("sse")
    server = live(app=messages_app(messages))
    events = read_sse(server.url + "/stream/sse")
    sent = [("message", text, str(i)) for i, text in enumerate(messages)]
    assert events == [*sent, ("end", "", None)]


def slow(messages, gap):
    """A source that waits ``gap`` s before each message, so keep-alives go
    out before the first message and between the others."""

    def source(count, interval):
        for message in messages:
            threading.Event().wait(gap)
            yield message

    return source


def test_sse_keep_alives_are_nothing_to_a_client(live, read_sse):
    app = create_app(slow(["first", "second"], 0.35), SSE_KEEPALIVE=0.1)
    server = live(app=app)
    events = read_sse(server.url + "/stream/sse")
    assert events == [
        ("message", "first", "0"),
        ("message", "second", "1"),
        ("end", "", None),
    ]


def test_only_an_event_ends_a_block(live):
    """The rule that keeps every client above exact: a blank line, which ends
    a block, follows only an event's data. The spec dispatches a block
    without data as nothing; httpx-sse dispatches one that carries a
    ``retry:``, or follows an id, as an empty message."""
    app = create_app(slow(["first", "second"], 0.35), SSE_KEEPALIVE=0.1)
    server = live(app=app)
    body = httpx.get(server.url + "/stream/sse", timeout=30).text
    assert body.endswith("\n\n")
    blocks = body.split("\n\n")[:-1]
    assert len(blocks) == 3  # first, second, the end
    for block in blocks:
        assert any(line.startswith("data:") for line in block.split("\n")), block
    # and the retry and the keep-alives still reach a browser
    stream = parse_sse(body)
    assert stream["retry"] == app.config["SSE_RETRY_MS"]
    assert stream["comments"] >= 2


@pytest.mark.redis
def test_the_feed_arrives_exactly(live, redis_service, redis_client, read_sse):
    messages = kept("sse")
    server = live(app=create_app(REDIS_URL=redis_service.url, TESTING=True))
    # the clients resume after a marker, so nothing races their connecting
    marker = publish("marker", client=redis_client)
    ids = [publish(message, client=redis_client) for message in messages]
    events = read_sse(f"{server.url}/stream/feed?after={marker}", last="after")
    assert events == [("message", m, i) for m, i in zip(messages, ids, strict=True)]


@pytest.mark.redis
def test_what_the_feed_cannot_send_is_nothing_to_a_client(
    live, redis_service, redis_client, read_sse
):
    server = live(app=create_app(REDIS_URL=redis_service.url, TESTING=True))
    marker = publish("marker", client=redis_client)
    first = publish("before", client=redis_client)
    # written past publish(), which would refuse it: SSE cannot carry a CR, so
    # the stream says so in a comment, which no client may see as a message
    redis_client.xadd(stream_key(TOPIC), {"message": json.dumps("one\rtwo")})
    last = publish("after", client=redis_client)
    events = read_sse(f"{server.url}/stream/feed?after={marker}", last="after")
    assert events == [("message", "before", first), ("message", "after", last)]


def test_websocket_arrives_exactly(live):
    messages = kept("ws")
    server = live(app=messages_app(messages))
    got = []
    with (
        connect(server.url.replace("http", "ws", 1) + "/stream/ws") as ws,
        pytest.raises(websockets.ConnectionClosedOK) as closed,
    ):
        while True:
            got.append(ws.recv(timeout=10))
    # the end: an empty binary message, then the close code 1000
    assert got == [*messages, b""]
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "end")


@pytest.mark.parametrize("kind", ["text", "ndjson"])
def test_lines_arrive_exactly(live, kind):
    messages = kept(kind)
    server = live(app=messages_app(messages))
    with httpx.stream("GET", f"{server.url}/stream/{kind}", timeout=30) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    got = lines if kind == "text" else [json.loads(line) for line in lines]
    assert got == messages
