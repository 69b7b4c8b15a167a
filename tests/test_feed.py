"""The live feed's window: one reader per process, streams that catch up from
Redis by id, topics kept apart, keep-alives, clients that leave, and Redis
restarts, all against a real redis-server."""

import os
import signal
import socket
import threading

import psutil
import pytest
import requests

from livestream import create_app, window
from livestream.feed import connect, publish
from livestream.tools.services import free_port, start_redis
from testing_support import FeedReader, wait_until

pytestmark = pytest.mark.redis


def test_a_stream_behind_the_window_catches_up_from_redis(
    live, redis_service, redis_client, monkeypatch
):
    # a window of ten entries: a stream that resumes fifty entries back reads
    # forty of them from Redis, then joins the window
    monkeypatch.setattr(window, "WINDOW_ENTRIES", 10)
    server = live(app=create_app(REDIS_URL=redis_service.url, TESTING=True))
    ids = [publish(f"old {i}", client=redis_client) for i in range(50)]
    first = FeedReader(server.url, want=5)  # starts the window at the end
    first.start()
    assert first.connected.wait(10)
    fresh = [publish(f"new {i}", client=redis_client) for i in range(25)]
    back = FeedReader(server.url, want=74, last_id=ids[0])
    back.start()
    back.join(20)
    assert back.data() == [f"old {i}" for i in range(1, 50)] + [
        f"new {i}" for i in range(25)
    ]
    assert [event["id"] for event in back.events] == ids[1:] + fresh
    first.join(20)
    assert first.data() == [f"new {i}" for i in range(5)]


def test_topics_are_kept_apart(live, redis_service, redis_client):
    server = live(app=create_app(REDIS_URL=redis_service.url, TESTING=True))
    readers = {
        topic: FeedReader(server.url, want=3, path=f"/stream/feed/{topic}")
        for topic in ["prices", "news"]
    }
    for reader in readers.values():
        reader.start()
        assert reader.connected.wait(10)
    for i in range(3):
        publish(f"prices {i}", "prices", client=redis_client)
        publish(f"news {i}", topic="news", client=redis_client)
    for topic, reader in readers.items():
        reader.join(20)
        assert reader.data() == [f"{topic} {i}" for i in range(3)]
    page = requests.get(server.url + "/feed/prices", timeout=5)
    assert page.status_code == 200
    assert "/stream/feed/prices" in page.text


@pytest.mark.parametrize("path", ["/feed/a%20b", "/stream/feed/" + "x" * 65])
def test_a_bad_topic_gets_400(path):
    response = (
        create_app(REDIS_URL="redis://127.0.0.1:1/0", TESTING=True)
        .test_client()
        .get(path)
    )
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("topic must be")


def test_publish_refuses_a_bad_topic_and_what_sse_cannot_carry(redis_client):
    with pytest.raises(ValueError, match="topic must be"):
        publish("x", "a b", client=redis_client)
    with pytest.raises(ValueError, match="carriage return"):
        publish("one\rtwo", client=redis_client)


def test_a_quiet_feed_sends_keep_alives(live, redis_service, redis_client):
    app = create_app(REDIS_URL=redis_service.url, SSE_KEEPALIVE=0.2, TESTING=True)
    reader = FeedReader(live(app=app).url, want=1)
    reader.start()
    assert reader.connected.wait(10)
    assert wait_until(lambda: reader.text.count(": keep-alive") >= 3, 10)
    publish("after the quiet", client=redis_client)
    reader.join(10)
    assert reader.data() == ["after the quiet"]


def _connections(service):
    """Connections the gunicorn workers of ``service`` hold to clients, whether
    or not the client has closed its end (CLOSE_WAIT)."""
    port = int(service.url.rsplit(":", 1)[1])
    return sum(
        1
        for worker in psutil.Process(service.process.pid).children()
        for conn in worker.net_connections("tcp")
        if conn.laddr.port == port
        and conn.status in (psutil.CONN_ESTABLISHED, psutil.CONN_CLOSE_WAIT)
    )


def test_clients_that_leave_a_quiet_feed_are_freed_under_gunicorn(
    gunicorn_service, redis_client
):
    host, port = gunicorn_service.url.removeprefix("http://").split(":")
    clients = []
    for _ in range(8):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"GET /stream/feed HTTP/1.1\r\nHost: localhost\r\n\r\n")
        clients.append(sock)
    for sock in clients:
        text = b""
        while b": following" not in text:
            text += sock.recv(4096)
    assert _connections(gunicorn_service) >= 8
    for sock in clients:
        sock.close()
    # nothing is published, and the keep-alive (15 s here) is far off: only
    # watching the socket notices that they left
    assert wait_until(lambda: _connections(gunicorn_service) == 0, 5)


def test_a_client_resumes_by_id_after_its_worker_is_killed(
    gunicorn_service, redis_client
):
    early = FeedReader(gunicorn_service.url, want=10)
    early.start()
    assert early.connected.wait(10)
    ids = [publish(f"message {i}", client=redis_client) for i in range(3)]
    assert wait_until(lambda: len(early.events) == 3, 10)
    # the worker dies; the stream is cut; the master starts another worker,
    # whose window begins at the end of the stream
    os.kill(int(early.worker), signal.SIGKILL)
    early.join(10)
    assert early.cut
    assert early.data() == [f"message {i}" for i in range(3)]
    ids += [publish(f"message {i}", client=redis_client) for i in range(3, 6)]
    back = FeedReader(gunicorn_service.url, want=5, last_id=early.events[-1]["id"])
    back.start()
    assert back.connected.wait(10)
    ids += [publish(f"message {i}", client=redis_client) for i in range(6, 8)]
    back.join(20)
    assert back.data() == [f"message {i}" for i in range(3, 8)]
    assert [event["id"] for event in back.events] == ids[3:]


def _publish_when_up(url, message):
    """Publish once Redis answers again; the entry id."""
    client = connect(url)
    try:
        entry = []

        def attempt():
            try:
                entry.append(publish(message, client=client))
            except OSError:
                return False
            except Exception as error:  # redis-py's ConnectionError
                if "onnect" not in type(error).__name__:
                    raise
                return False
            return True

        assert wait_until(attempt, 15)
        return entry[0]
    finally:
        client.close()


def test_a_redis_restart_loses_and_repeats_nothing(live, tmp_path):
    port = free_port()
    redis_service = start_redis(port=port, directory=tmp_path)
    try:
        app = create_app(REDIS_URL=redis_service.url, TESTING=True)
        reader = FeedReader(live(app=app).url, want=10)
        reader.start()
        assert reader.connected.wait(10)
        for i in range(5):
            _publish_when_up(redis_service.url, f"message {i}")
        assert wait_until(lambda: len(reader.events) == 5, 10)
        redis_service.stop()
        redis_service = start_redis(port=port, directory=tmp_path)
        for i in range(5, 10):
            _publish_when_up(redis_service.url, f"message {i}")
        reader.join(20)
        assert reader.data() == [f"message {i}" for i in range(10)]
        assert "failure" not in reader.text
    finally:
        redis_service.stop()


def test_a_page_that_connects_while_redis_is_down_waits_for_it(live, tmp_path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = create_app(REDIS_URL=url, SSE_KEEPALIVE=0.2, TESTING=True)
    reader = FeedReader(live(app=app).url, want=2)
    reader.start()
    # no Redis: the stream stays open, and says so with keep-alives
    assert wait_until(lambda: reader.text.count(": keep-alive") >= 2, 10)
    assert not reader.connected.is_set()
    with start_redis(port=port, directory=tmp_path):
        assert reader.connected.wait(10)
        for i in range(2):
            _publish_when_up(url, f"message {i}")
        reader.join(20)
    assert reader.data() == ["message 0", "message 1"]
    assert "failure" not in reader.text


def test_an_error_retrying_cannot_fix_ends_the_stream_with_failure(
    live, redis_service, redis_client
):
    # the topic's key holds a string, not a stream: XREAD answers WRONGTYPE
    redis_client.set("livestream:broken", "not a stream")
    app = create_app(REDIS_URL=redis_service.url, TESTING=True)
    reader = FeedReader(live(app=app).url, want=1, path="/stream/feed/broken")
    reader.start()
    reader.join(15)
    assert reader.events[0]["event"] == "failure"
    assert "WRONGTYPE" in reader.events[0]["data"]


def test_a_window_whose_reader_ends_before_it_is_stored_is_forgotten(
    redis_service, redis_client, monkeypatch
):
    # the reader can fail and close before `follow()` has stored its window
    # (CI met it once): hold the constructor until the reader is closing
    redis_client.set("livestream:broken", "not a stream")
    forgetting = threading.Event()
    forget = window.Windows._forget

    def noted(self, name, closing):
        forgetting.set()
        forget(self, name, closing)

    class ReaderEndsFirst(window.Window):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            assert wait_until(
                lambda: forgetting.is_set() or not self._thread.is_alive(), 15
            )

    monkeypatch.setattr(window.Windows, "_forget", noted)
    monkeypatch.setattr(window, "Window", ReaderEndsFirst)
    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    windows = window.Windows()
    opened = windows.follow(redis_service.url, "livestream:broken", connect)
    opened._thread.join(15)
    assert [args.exc_value for args in died] == []
    assert "WRONGTYPE" in str(opened.error)
    assert (redis_service.url, "livestream:broken") not in windows._windows
