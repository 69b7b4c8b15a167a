"""What the live feed holds in a process: a topic's reader lives while streams
follow it, the topics followed at once are capped, and an entry too large is
sent to nobody, so memory stays bounded however many streams read it. Against
a real redis-server, on serve() and on a gunicorn worker."""

import contextlib
import json
import re
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest

from livestream import create_app, window
from livestream.feed import connect, publish, stream_key
from livestream.tools.services import free_port, start_gunicorn, start_redis
from testing_support import FeedReader, wait_until

pytestmark = pytest.mark.redis


def _address(url):
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    return host, int(port)


class Refused(Exception):
    """A stream answered with another status than 200."""

    def __init__(self, status, text):
        super().__init__(f"{status}: {text}")
        self.status, self.text = status, text


def _recv(sock, text):
    more = sock.recv(65536)
    assert more, f"the server closed the connection after {text!r}"
    return text + more


def _follow(url, topic, last_id=None):
    """A client socket whose stream of ``topic`` has started following."""
    sock = socket.create_connection(_address(url), timeout=30)
    resume = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
    sock.sendall(
        f"GET /stream/feed/{topic} HTTP/1.1\r\nHost: localhost\r\n{resume}\r\n".encode()
    )
    text = b""
    while b"\r\n\r\n" not in text:
        text = _recv(sock, text)
    head, body = text.split(b"\r\n\r\n", 1)
    status = int(head.split()[1])
    if status != 200:
        # the connection may stay open for another request: read by length
        length = int(re.search(rb"(?i)content-length: *([0-9]+)", head)[1])
        while len(body) < length:
            body = _recv(sock, body)
        sock.close()
        raise Refused(status, body.decode())
    while b": following" not in body:
        body = _recv(sock, body)
    return sock


def _readers(prefix):
    """This process's reader threads on topics whose name starts ``prefix``."""
    name = f"livestream reader {stream_key(prefix)}"
    return sum(thread.name.startswith(name) for thread in threading.enumerate())


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own; the test's client of it; and a count
    of its other clients, which are the app's."""
    with start_redis(port=free_port(), directory=tmp_path) as service:
        client = connect(service.url)
        yield service, client, lambda: len(client.client_list()) - 1
        client.close()


@pytest.mark.timing
def test_a_topics_reader_and_connections_end_soon_after_its_last_stream(
    live, own_redis
):
    service, client, clients = own_redis
    idle = 0.5
    app = create_app(REDIS_URL=service.url, FEED_IDLE_CLOSE=idle, TESTING=True)
    server = live(app=app)
    streams = [_follow(server.url, f"gone-{i}") for i in range(40)]
    assert _readers("gone-") == 40
    assert clients() == 40
    first = publish("while it was followed", "gone-0", client=client)
    for sock in streams:
        sock.close()
    # a stream notices its client left within a quarter second; its reader
    # ends FEED_IDLE_CLOSE later, waking for it rather than at its next block
    assert wait_until(lambda: _readers("gone-") == 0 and clients() == 0, idle + 3)
    # a topic followed again gets a reader of its own, which resumes by id
    later = [publish(f"later {i}", "gone-0", client=client) for i in (1, 2)]
    back = FeedReader(server.url, want=2, last_id=first, path="/stream/feed/gone-0")
    back.start()
    back.join(20)
    assert back.data() == ["later 1", "later 2"]
    assert [event["id"] for event in back.events] == later


def test_a_quiet_stream_keeps_its_reader(live, redis_service, redis_client):
    app = create_app(
        REDIS_URL=redis_service.url,
        FEED_IDLE_CLOSE=0.1,
        SSE_KEEPALIVE=0.2,
        TESTING=True,
    )
    reader = FeedReader(live(app=app).url, want=1, path="/stream/feed/quiet")
    reader.start()
    assert reader.connected.wait(10)
    # many times FEED_IDLE_CLOSE with nothing published: a stream follows it
    assert wait_until(lambda: reader.text.count(": keep-alive") >= 4, 10)
    assert _readers("quiet") == 1
    publish("still here", "quiet", client=redis_client)
    reader.join(10)
    assert reader.data() == ["still here"]


def test_past_feed_max_topics_a_new_topic_gets_503(live, redis_service):
    app = create_app(
        REDIS_URL=redis_service.url,
        FEED_MAX_TOPICS=3,
        FEED_IDLE_CLOSE=600,  # only the cap frees a topic in this test
        TESTING=True,
    )
    server = live(app=app)
    held = [_follow(server.url, f"cap-{i}") for i in range(3)]
    try:
        with pytest.raises(Refused) as refused:
            _follow(server.url, "cap-3")
        assert refused.value.status == 503
        assert refused.value.text.count("\n") == 1
        assert "FEED_MAX_TOPICS" in refused.value.text
        # another stream of a topic that is followed already takes nothing new
        held.append(_follow(server.url, "cap-0"))
        # once nobody follows cap-0, a new topic takes its place at once
        held.pop(0).close()
        held.pop().close()

        def opened():
            try:
                held.append(_follow(server.url, "cap-3"))
            except Refused:  # the 503: cap-0's streams are not over yet
                return False
            return True

        assert wait_until(opened, 10)
        # cap-0's reader ends at its next wake, a second at most
        assert wait_until(lambda: _readers("cap-") == 3, 3)
    finally:
        for sock in held:
            sock.close()


def test_feed_limits_are_checked():
    for bad in [
        {"FEED_IDLE_CLOSE": 0},
        {"FEED_MAX_TOPICS": 0},
        {"FEED_MAX_ENTRY_BYTES": window.WINDOW_BYTES},
    ]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            create_app(**bad)


def test_publish_refuses_an_entry_larger_than_the_limit(redis_client):
    key = stream_key("feed")
    # the default limit, 1 MiB: a message of that many characters is two
    # bytes more as JSON
    with pytest.raises(ValueError, match="FEED_MAX_ENTRY_BYTES") as refused:
        publish("x" * 2**20, client=redis_client)
    assert "more than the feed's limit of 1048576" in str(refused.value)
    assert redis_client.xlen(key) == 0
    publish("x" * 100, client=redis_client, max_bytes=102)  # its JSON: 102 bytes
    with pytest.raises(ValueError, match="more than the feed's limit of 101"):
        publish("x" * 100, client=redis_client, max_bytes=101)
    assert redis_client.xlen(key) == 1


def test_an_entry_too_large_that_bypassed_publish_is_a_comment(
    live, redis_service, redis_client
):
    app = create_app(
        REDIS_URL=redis_service.url, FEED_MAX_ENTRY_BYTES=1000, TESTING=True
    )
    server = live(app=app)
    live_reader = FeedReader(server.url, want=2)
    live_reader.start()
    assert live_reader.connected.wait(10)
    before = publish("before", client=redis_client)
    huge = redis_client.xadd(stream_key("feed"), {"message": json.dumps("x" * 2000)})
    publish("after", client=redis_client)
    # one that follows the window, and one that reads Redis to catch up (its
    # position is before the window), are told the same
    back = FeedReader(server.url, want=1, last_id=before)
    back.start()
    for reader, sent in [(live_reader, ["before", "after"]), (back, ["after"])]:
        reader.join(20)
        assert reader.data() == sent
        assert f": entry {huge} was not sent" in reader.text
        assert "FEED_MAX_ENTRY_BYTES (1000 bytes)" in reader.text


# the case: a 20 MB entry and 40 streams grew a worker by 1.1 GB, a
# copy (and more) per stream
HUGE = 20 * 2**20
STREAMS = 40


class PeakGrowth:
    """How far a process's RSS rose above where it was, in a ``with`` block;
    sampled every 20 ms, so a peak between two samples may be missed."""

    def __init__(self, process):
        self.process = process
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self.start = self.peak = self.process.memory_info().rss
        self._watcher.start()
        return self

    def __exit__(self, *error):
        self._done.set()
        self._watcher.join()

    def _watch(self):
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def grown(self):
        return self.peak - self.start


def _read_to_the_end(url, last_id, ready, read):
    sock = _follow(url, "huge", last_id)
    ready.release()
    tail, total = b"", 0
    while b"the end" not in tail:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        tail = (tail + chunk)[-64:]
    sock.close()
    read.append(total)


@pytest.mark.parametrize("how", ["following", "catching up"])
def test_a_huge_entry_costs_a_worker_a_few_copies_not_one_per_stream(
    redis_service, redis_client, how
):
    key = stream_key("huge")
    redis_client.delete(key)
    with start_gunicorn(
        workers=1, connections=STREAMS + 10, redis_url=redis_service.url
    ) as service:
        (worker,) = psutil.Process(service.process.pid).children()
        last_id = None
        if how == "catching up":
            # every stream resumes from before the huge entry: a new window
            # starts at the end, so each reads it from Redis
            last_id = publish("before", "huge", client=redis_client)
            redis_client.xadd(key, {"message": json.dumps("x" * HUGE)})
        ready, read = threading.Semaphore(0), []
        streams = [
            threading.Thread(
                target=_read_to_the_end, args=(service.url, last_id, ready, read)
            )
            for _ in range(STREAMS)
        ]
        with PeakGrowth(worker) as memory:
            for stream in streams:
                stream.start()
            for _ in streams:
                assert ready.acquire(timeout=30)
            if how == "following":
                redis_client.xadd(key, {"message": json.dumps("x" * HUGE)})
            publish("the end", "huge", client=redis_client)
            for stream in streams:
                stream.join(60)
    # the worker held a few copies at most, and nobody was sent the entry
    assert memory.grown < 8 * HUGE, f"the worker grew {memory.grown / 2**20:.0f} MiB"
    assert len(read) == STREAMS
    assert max(read) < 10_000


# entries of 64 KB: a write of a stream behind joins about 16 of them
WALKED = 80


def test_streams_behind_in_the_window_keep_a_bounded_copy_of_it(
    redis_service, redis_client
):
    # streams one entry apart in the window, as a slow reader walking it
    # leaves them: each position's write is joined once and kept for the
    # next stream there until the next read, within JOINED_BYTES (before,
    # about a megabyte a position: some 70 MB here)
    key = stream_key("walk")
    redis_client.delete(key)
    followed = window.Windows().follow(redis_service.url, key, connect)
    assert wait_until(lambda: followed.floor is not None, 10)
    for n in range(WALKED):
        publish(f"{n:04d}" + "w" * 65_000, "walk", client=redis_client)
    assert wait_until(lambda: len(followed) == WALKED, 10)
    positions = [followed.floor, *followed._ids[:-1]]
    tracemalloc.start()
    try:
        for position in positions:
            data, last = followed._take(position)
            assert data and last > position
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        followed.leave()
    bound = window.JOINED_BYTES + window.WRITE_BYTES
    assert grown < bound, f"{grown / 2**20:.0f} MiB kept"


# streams on a quiet feed, and the most times their worker may wake in
# IDLE_SECONDS: its topic's reader wakes once a second (its Redis read
# blocks that long), and nothing else. Before streams parked in the
# broadcast, each woke four times a second to look at its client: 8 x 2 x
# STREAMS_IDLE wakes here
STREAMS_IDLE = 100
IDLE_SECONDS = 2.0
MOST_WAKES = 40


def _wakes(pid):
    """Times the threads of process ``pid`` went to sleep and woke again (the
    process's own count covers its main thread alone)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            text = status.read_text()
            total += int(re.search(r"voluntary_ctxt_switches:\s*(\d+)", text)[1])
    return total


@pytest.mark.parametrize("worker_class", ["gthread", "gevent"])
def test_idle_streams_wake_nothing_in_their_worker(redis_service, worker_class):
    with start_gunicorn(
        workers=1,
        connections=STREAMS_IDLE + 10,
        redis_url=redis_service.url,
        worker_class=worker_class,
    ) as service:
        (worker,) = psutil.Process(service.process.pid).children()
        clients = [_follow(service.url, "idle") for _ in range(STREAMS_IDLE)]
        try:
            # each stream has sent its opening comment, so it is parked (or,
            # before the broadcast, waiting on its timer): count the wakes
            # of a quiet spell that long
            before = _wakes(worker.pid)
            time.sleep(IDLE_SECONDS)
            woke = _wakes(worker.pid) - before
            assert woke <= MOST_WAKES, f"{woke} wakes in {IDLE_SECONDS} s"
            # and they are still streams: a message reaches every one
            publish("after the quiet", "idle", client=connect(redis_service.url))
            for sock in clients:
                text = b""
                while b"after the quiet" not in text:
                    text = _recv(sock, text)
        finally:
            for sock in clients:
                sock.close()
