import socket
import threading
import time

import pytest

from livestream import create_app, serve


class Recorder:
    """A source that yields given messages and records how its run ended."""

    def __init__(self, messages=(), interval=None, forever=False):
        self.messages = list(messages)
        self.interval = interval
        self.forever = forever
        self.started = threading.Event()
        self.closed = threading.Event()

    def __call__(self, count, interval):
        wait = self.interval if self.interval is not None else interval
        self.started.set()
        try:
            i = 0
            while self.forever or i < len(self.messages):
                yield self.messages[i] if i < len(self.messages) else f"tick {i}"
                i += 1
                if wait:
                    threading.Event().wait(wait)
        finally:
            self.closed.set()


def wait_until(condition, timeout):
    """Poll ``condition()`` until it is true; False if ``timeout`` s pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def app():
    """An app on the default demo source, quick enough for tests."""
    return create_app(STREAM_COUNT=3, STREAM_INTERVAL=0, TESTING=True)


@pytest.fixture
def client(app):
    """Flask's test client for ``app``."""
    return app.test_client()


@pytest.fixture
def live():
    """Serve an app on a real threaded server; stopped after the test."""
    servers = []

    def start(source=None, **kwargs):
        server = serve(create_app(source, TESTING=True), **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def held_port():
    """A port that another program listens on."""
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    yield other.getsockname()[1]
    other.close()
