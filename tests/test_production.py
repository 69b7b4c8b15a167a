"""gunicorn (gevent and gthread workers), and a live feed fanned out through a real
Redis: every client on every worker gets every message once, in order."""

import multiprocessing
import threading
import time

import pytest
import requests

from livestream import create_app
from livestream.feed import is_entry_id, publish
from livestream.tools.fanout import run_fanout
from livestream.tools.fanout_clients import clients_process
from livestream.tools.services import free_port
from testing_support import FeedReader

# a port that was free a moment ago: a feed that is served, but whose Redis
# is away
UNREACHABLE = f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.redis
def test_publish_appends_to_a_capped_stream(redis_client):
    ids = [publish(i, client=redis_client) for i in range(3)]
    assert all(is_entry_id(entry) for entry in ids)
    assert ids == sorted(ids, key=lambda e: tuple(map(int, e.split("-"))))
    for i in range(1000):
        publish(i, client=redis_client, maxlen=100)
    # MAXLEN ~ trims in whole blocks of entries: about 100 stay, never all
    assert 100 <= redis_client.xlen("livestream:feed") < 1000


@pytest.mark.redis
def test_every_client_on_every_worker_gets_every_message(
    gunicorn_service, redis_client
):
    readers = [FeedReader(gunicorn_service.url, want=20) for _ in range(16)]
    for reader in readers:
        reader.start()
    for reader in readers:
        assert reader.connected.wait(10)
    # sixteen connections on two workers: both serve some of them
    assert len({reader.worker for reader in readers}) == 2
    ids = [publish(f"message {i}", client=redis_client) for i in range(20)]
    for reader in readers:
        reader.join(20)
        assert [e["data"] for e in reader.events] == [f"message {i}" for i in range(20)]
        assert [e["id"] for e in reader.events] == ids


@pytest.mark.redis
def test_a_client_cut_off_resumes_from_its_last_event_id(
    gunicorn_service, redis_client
):
    early = FeedReader(gunicorn_service.url, want=5)
    early.start()
    assert early.connected.wait(10)
    for i in range(10):
        publish(f"message {i}", client=redis_client)
    early.join(20)  # it hangs up after five
    assert [e["data"] for e in early.events] == [f"message {i}" for i in range(5)]
    # it comes back with the last id it saw: the five it missed come from the
    # stream's history, the rest as they are published
    back = FeedReader(gunicorn_service.url, want=15, last_id=early.events[-1]["id"])
    back.start()
    assert back.connected.wait(10)
    for i in range(10, 20):
        publish(f"message {i}", client=redis_client)
    back.join(20)
    assert [e["data"] for e in back.events] == [f"message {i}" for i in range(5, 20)]


@pytest.mark.redis
def test_gunicorn_serves_the_pages_and_streams(gunicorn_service):
    for path in ["/", "/xhr", "/iframe", "/fetch", "/sse", "/feed"]:
        assert requests.get(gunicorn_service.url + path, timeout=5).status_code == 200
    text = requests.get(
        gunicorn_service.url + "/stream/ndjson?count=3&interval=0", timeout=5
    ).text
    assert text == "0.0\n1.0\n1.4142135623730951\n"


@pytest.mark.parametrize("value", ["abc", "12", "1-2-3", "-1-0"])
def test_a_bad_last_event_id_gets_400(value):
    response = (
        create_app(REDIS_URL=UNREACHABLE)
        .test_client()
        .get("/stream/feed", headers={"Last-Event-ID": value})
    )
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("Last-Event-ID must be a Redis")


def test_the_feed_is_served_only_when_it_has_a_redis(monkeypatch):
    monkeypatch.delenv("LIVESTREAM_REDIS_URL", raising=False)
    plain = create_app(TESTING=True).test_client()
    assert plain.get("/feed").status_code == 404
    assert plain.get("/stream/feed").status_code == 404
    assert (
        create_app(FEED=False, REDIS_URL=UNREACHABLE).url_map.bind("").test("/feed")
        is False
    )
    assert (
        create_app(REDIS_URL=UNREACHABLE).test_client().get("/feed").status_code == 200
    )


def test_the_redis_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIVESTREAM_REDIS_URL", UNREACHABLE)
    app = create_app(TESTING=True)
    assert app.config["REDIS_URL"] == UNREACHABLE
    assert app.test_client().get("/feed").status_code == 200


@pytest.mark.redis
@pytest.mark.parametrize("server", ["livestream/gthread", "livestream/gevent"])
def test_the_fanout_benchmark_delivers_every_message_at_a_small_scale(server):
    result = run_fanout(clients=20, workers=2, rate=20, seconds=1, server=server)
    assert result["messages"] == 20
    assert result["delivered"] == 1.0
    assert result["complete"] == 20
    assert len(result["worker MB"]) == 2
    assert result["worker timeouts"] == 0
    assert result["run CPU"] > 0
    assert result["others' CPU"] >= 0


@pytest.mark.redis
def test_the_fanout_benchmark_runs_the_peer():
    result = run_fanout(
        clients=5, workers=1, rate=10, seconds=1, server="Flask-SSE/gevent"
    )
    assert result["complete"] == 5


@pytest.mark.redis
def test_fanout_clients_stamp_messages_when_they_arrive(
    live, redis_service, redis_client
):
    # fifty messages published at once arrive in one write: they were all
    # received at the same moment, however long the client takes to parse
    # them, so their latencies are equal
    server = live(app=create_app(REDIS_URL=redis_service.url, TESTING=True))
    host, port = server.url.removeprefix("http://").split(":")
    ours, theirs = multiprocessing.Pipe()
    clients = threading.Thread(
        target=clients_process, args=(host, int(port), "/stream/feed", 1, theirs)
    )
    clients.start()
    deadline = time.monotonic() + 20
    while not (ours.poll(0.2) and ours.recv() == 1):  # ready clients
        assert time.monotonic() < deadline, "the client never heard a warm-up"
        publish({"warmup": True}, client=redis_client)
    ours.send("go")
    sent = time.time()
    with redis_client.pipeline(transaction=True) as together:
        for n in range(50):
            publish({"n": n, "t": sent}, client=together)
        publish({"end": True}, client=together)
        together.execute()
    ours.send(50)
    summary = ours.recv()
    while not isinstance(summary, dict):  # ready counts sent before "go"
        summary = ours.recv()
    clients.join(10)
    assert summary["complete"] == 1
    assert summary["p50 ms"] == summary["p99 ms"]
