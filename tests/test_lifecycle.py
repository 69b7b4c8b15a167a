"""Open streams are counted, and end when clients leave or the server stops."""

import os
import socket
import threading
import time

import requests

from livestream import create_app, serve
from testing_support import Recorder, wait_until


def open_stream(server, path="/stream/text"):
    """A raw client that has sent its request and seen the first message."""
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    client.settimeout(5)
    received = b""
    while b"\r\n\r\n" not in received:
        received += client.recv(4096)
    return client


def test_active_streams_counts_open_streams(live):
    server = live(Recorder(forever=True, interval=0.05))
    assert server.active_streams == 0
    clients = [open_stream(server) for _ in range(3)]
    assert wait_until(lambda: server.active_streams == 3, 2)
    status = requests.get(server.url + "/status", timeout=5)
    assert status.status_code == 200
    assert status.json() == {"active_streams": 3, "pid": os.getpid()}
    for client in clients:
        client.close()
    assert wait_until(lambda: server.active_streams == 0, 2)


def test_a_client_leaving_during_a_long_gap_ends_its_stream_at_once(live):
    # the source waits a minute between messages; the stream's thread watches
    # the socket meanwhile, so the count drops long before the next message
    release = threading.Event()
    closed = threading.Event()

    def sensor(count, interval):
        try:
            yield "first reading"
            release.wait(60)
            yield "second reading"
        finally:
            closed.set()

    server = live(sensor)
    client = open_stream(server, "/stream/ndjson")
    assert wait_until(lambda: server.active_streams == 1, 2)
    client.close()
    assert wait_until(lambda: server.active_streams == 0, 1)
    assert server.connections == 0
    # the source itself is closed as soon as it produces its next message
    assert not closed.is_set()
    release.set()
    assert closed.wait(2)


def test_stop_with_50_open_streams():
    release = threading.Event()
    closed = []

    def slow_sensor(count, interval):
        try:
            while True:
                yield "reading"
                release.wait(60)
        finally:
            closed.append(1)

    app = create_app(slow_sensor, TESTING=True)
    server = serve(app)
    clients = [open_stream(server) for _ in range(50)]
    try:
        assert wait_until(lambda: server.active_streams == 50, 5)
        began = time.monotonic()
        server.stop()
        # the spec gives stop() 1 s, however many streams are open
        assert time.monotonic() - began < 1.0
        assert server.connections == 0  # every request thread has finished
        assert server.active_streams == 0
        # the same port can be served again at once
        again = serve(app, port=server.port)
        status = requests.get(again.url + "/status", timeout=5).json()
        assert status["active_streams"] == 0
        again.stop()
        # the sources, blocked in their wait, are closed at their next message
        release.set()
        assert wait_until(lambda: len(closed) == 50, 5)
    finally:
        release.set()
        for client in clients:
            client.close()
