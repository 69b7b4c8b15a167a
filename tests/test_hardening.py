"""What hostile hosts, slow readers, odd sources and odd input find, tried on
a real threaded server."""

import socket
import subprocess
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest
import requests

from livestream import create_app
from livestream.framing import sse_event
from testing_support import Recorder, parse_sse, wait_until


def raw_get(port, path, host="127.0.0.1", timeout=5.0):
    """Send one request with a ``Host`` of our choosing; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer.decode("utf-8", "replace")


# hosts


@pytest.mark.parametrize(
    "path", ["/xhr", "/stream/text?count=2&interval=0", "/status", "/nowhere"]
)
def test_a_foreign_host_gets_a_plain_400_that_names_it(live, path):
    server = live()
    answer = raw_get(server.port, path, host=f"attacker.example:{server.port}")
    assert answer.startswith("HTTP/1.1 400")
    assert "text/plain" in answer
    assert f"Host 'attacker.example:{server.port}' is not trusted" in answer


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "localhost:1"])
def test_the_local_names_are_answered_on_any_port(live, host):
    server = live()
    assert raw_get(server.port, "/status", host=host).startswith("HTTP/1.1 200")


def test_the_proxy_host_is_trusted(live):
    server = live(proxy_prefix="https://hub.example/user/me/proxy/{port}")
    assert raw_get(server.port, "/status", host="hub.example").startswith(
        "HTTP/1.1 200"
    )


@pytest.mark.parametrize(
    ("setting", "answered"),
    [(None, True), (["attacker.example"], True), (["other.example"], False)],
)
def test_trusted_hosts_is_a_setting(live, setting, answered):
    server = live(app=create_app(TRUSTED_HOSTS=setting))
    answer = raw_get(server.port, "/status", host="attacker.example")
    assert answer.startswith("HTTP/1.1 200" if answered else "HTTP/1.1 400")


def test_trusted_hosts_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIVESTREAM_TRUSTED_HOSTS", "a.example, b.example")
    assert create_app().config["TRUSTED_HOSTS"] == ["a.example", "b.example"]


# memory


def test_a_client_that_never_reads_holds_the_source_back(live):
    produced = []

    def megabytes(count, interval):
        for i in range(count):
            produced.append(i)
            yield f"{i:07d}" + "x" * 999_993  # a new 1 MB string each time

    server = live(megabytes)
    process = psutil.Process()
    before = process.memory_info().rss
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(
            b"GET /stream/text?count=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )

        def held_back():
            seen = len(produced)
            time.sleep(0.5)
            return seen == len(produced) > 0

        assert wait_until(held_back, 20)
        grown = (process.memory_info().rss - before) / 1e6
        assert len(produced) < 60, f"the source made {len(produced)} MB"
        assert grown < 100, f"the server grew by {grown:.0f} MB"


def test_sse_frames_ten_megabytes_of_newlines_in_linear_memory():
    message = "\n" * 10_000_000
    tracemalloc.start()
    try:
        event = sse_event(message, 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert event.count("data: ") == 10_000_001
    # the event itself is 70 MB ("data: " for each line) and is built by a
    # copy or two; one object per line made it 780 MB
    assert peak < 20 * len(message), f"peak {peak / 1e6:.0f} MB"


# connections


def test_the_listen_backlog_is_the_system_maximum(live):
    server = live()
    # ss shows a listening socket's backlog as its Send-Q
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True
    ).stdout.split()
    with open("/proc/sys/net/core/somaxconn") as limit:
        system_maximum = int(limit.read())
    assert int(out[2]) == system_maximum


@pytest.mark.timing
def test_half_sent_requests_are_dropped_after_the_head_timeout(live):
    server = live(head_timeout=0.5)
    stalled = []
    for _ in range(50):
        client = socket.create_connection(("127.0.0.1", server.port))
        client.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stalled.append(client)
    try:
        assert requests.get(server.url + "/status", timeout=5).status_code == 200
        assert wait_until(lambda: server.connections == 0, 5)
        for client in stalled:
            client.settimeout(2)
            assert client.recv(100) == b""  # the server closed it
    finally:
        for client in stalled:
            client.close()


@pytest.mark.timing
def test_a_stream_runs_past_the_head_timeout(live):
    server = live(head_timeout=0.3)
    body = requests.get(server.url + "/stream/text?count=4&interval=0.2", timeout=5)
    assert body.text.splitlines() == [
        "0.0",
        "1.0",
        "1.4142135623730951",
        "1.7320508075688772",
    ]


@pytest.mark.timing
def test_past_the_connection_cap_a_client_gets_503_at_once(live):
    server = live(Recorder(forever=True, interval=0.1), max_connections=3)
    streams = [
        requests.get(server.url + "/stream/text", stream=True, timeout=5)
        for _ in range(3)
    ]
    try:
        assert wait_until(lambda: server.active_streams == 3, 5)
        started = time.monotonic()
        refused = requests.get(server.url + "/status", timeout=5)
        assert time.monotonic() - started < 1
        assert refused.status_code == 503
        assert "as many connections" in refused.text
    finally:
        for response in streams:
            response.close()
    assert wait_until(lambda: server.active_streams == 0, 5)
    assert requests.get(server.url + "/status", timeout=5).status_code == 200


# sources


@pytest.mark.parametrize(("returned", "shown"), [(None, "None"), (42, "42")])
def test_a_source_that_returns_no_iterable_fails_at_once(live, returned, shown):
    def odd(count, interval):
        return returned

    server = live(odd)
    body = requests.get(server.url + "/stream/sse", timeout=5).text
    (failure,) = parse_sse(body)["events"]
    assert failure["event"] == "failure"
    assert f"odd returned {shown}" in failure["data"]
    assert wait_until(lambda: server.active_streams == 0, 2)


def deep_dict():
    nested = {}
    for _ in range(100_000):
        nested = {"a": nested}
    return nested


@pytest.mark.parametrize("bad", [deep_dict, lambda: 10**5000], ids=["deep", "long"])
@pytest.mark.parametrize("kind", ["text", "ndjson", "html", "sse"])
def test_what_a_format_cannot_encode_is_refused_after_the_good(live, kind, bad):
    message = bad()
    server = live(lambda count, interval: iter(["before", message, "after"]))
    with requests.get(server.url + f"/stream/{kind}", stream=True, timeout=5) as r:
        assert r.status_code == 200
        body = b""
        try:
            for chunk in r.iter_content(None):
                body += chunk
        except requests.exceptions.ChunkedEncodingError:
            pass  # the line formats break off: they cannot say why in-band
    text = body.decode()
    assert "before" in text
    assert "after" not in text
    if kind in ("html", "sse"):
        assert "a message was refused" in text
        assert "cannot carry" in text


@pytest.mark.parametrize("path", ["/stream/text", "/stream/sse"])
def test_a_half_closed_client_is_never_sent_a_clean_end(live, path):
    server = live(Recorder(forever=True, interval=0.05))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert b"tick" in answer or b"200 OK" in answer
    assert not answer.endswith(b"0\r\n\r\n")
    assert b"event: end" not in answer


# bad input


@pytest.mark.parametrize(
    ("path", "headers", "says"),
    [
        ("/stream/sse?count=5", {"Last-Event-ID": "9" * 10_000}, "Last-Event-ID must"),
        ("/stream/text?count=" + "9" * 5000, {}, "count must be an integer"),
        ("/xhr?keep=" + "9" * 5000, {}, "keep must be an integer"),
        ("/stream/text?interval=" + "9" * 5000, {}, "interval must be"),
    ],
)
def test_long_numbers_get_the_documented_400(live, path, headers, says):
    server = live()
    response = requests.get(server.url + path, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.text.startswith(says)
    assert "Exceeds the limit" not in response.text
    assert len(response.text.splitlines()) == 1


@pytest.mark.parametrize(
    "raw", ["9" * 30 + "-0", "0-" + "9" * 30, "18446744073709551616-0"]
)
def test_a_feed_id_too_large_for_redis_gets_a_400(live, raw):
    server = live(app=create_app(FEED=True, REDIS_URL="redis://127.0.0.1:9/0"))
    for path, headers in [
        (f"/feed?after={raw}", {}),
        (f"/stream/feed?after={raw}", {}),
        ("/stream/feed", {"Last-Event-ID": raw}),
    ]:
        response = requests.get(server.url + path, headers=headers, timeout=5)
        assert response.status_code == 400
        assert "must be a Redis Stream entry id" in response.text


def test_the_largest_feed_id_is_accepted(live):
    server = live(app=create_app(FEED=True, REDIS_URL="redis://127.0.0.1:9/0"))
    largest = f"{2**64 - 1}-{2**64 - 1}"
    assert requests.get(server.url + f"/feed?after={largest}").status_code == 200


def bounded(words):
    """Whether a gunicorn command bounds the connections a worker accepts:
    under gthread as many as its threads, under gevent a number given; and
    lets a long query line reach the app, to be refused in its words."""
    if words[words.index("--limit-request-line") + 1] != "8190":
        return False
    connections = words[words.index("--worker-connections") + 1]
    if words[words.index("--worker-class") + 1] == "gthread":
        return words[words.index("--threads") + 1] == connections
    return int(connections) > 0


@pytest.mark.redis
def test_gunicorn_workers_accept_only_what_they_serve(gunicorn_service):
    assert bounded(gunicorn_service.process.args)
    # the command docs/production.md gives to copy
    docs = (Path(__file__).parent.parent / "docs" / "production.md").read_text()
    (command,) = [line for line in docs.splitlines() if "bin/gunicorn" in line]
    assert bounded(command.split())
