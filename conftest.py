"""The fixtures of the whole suite, tests/ and e2e/ alike, built on each other:
an app and its client; a live server; Redis and gunicorn, once a session; a
Jupyter Server with jupyter-server-proxy, once a session, and apps behind it;
each technique by name; a real IPython kernel.

Nothing here needs Playwright, so a unit test runs without it: the browser's
fixtures are in e2e/conftest.py."""

import socket

import pytest

from livestream import create_app, serve
from livestream.feed import TOPIC, connect, stream_key
from livestream.techniques import TECHNIQUES
from livestream.tools.services import (
    start_gunicorn,
    start_jupyter_server,
    start_redis,
)


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
    """Serve on a real threaded server; every server is stopped after the test.

    ``live(source)`` serves ``create_app(source)``; ``live(app=wsgi_app)``
    serves any WSGI app; other keywords go to ``serve()``.
    """
    servers = []

    def start(source=None, *, app=None, **kwargs):
        if app is None:
            app = create_app(source, TESTING=True)
        server = serve(app, **kwargs)
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


@pytest.fixture(scope="session")
def redis_service():
    """A real redis-server on a free port, once for the whole session."""
    with start_redis() as service:
        yield service


@pytest.fixture
def redis_client(redis_service):
    """A client of the session's Redis, with the feed emptied."""
    client = connect(redis_service.url)
    client.delete(stream_key(TOPIC))
    yield client
    client.close()


@pytest.fixture(scope="session")
def gunicorn_service(redis_service):
    """gunicorn with two workers on the session's Redis, once a session.

    Each worker takes at most ten connections at once, so sixteen streams
    must be spread over both.
    """
    with start_gunicorn(
        workers=2,
        connections=10,
        redis_url=redis_service.url,
    ) as service:
        yield service


@pytest.fixture(scope="session")
def jupyter_service():
    """A real Jupyter Server with jupyter-server-proxy, once a session, at the
    path a hub gives a user's server."""
    with start_jupyter_server(base_url="/user/learner/") as service:
        yield service


@pytest.fixture(params=["port", "absolute"])
def behind_jupyter(request, live, jupyter_service):
    """Serve an app behind the session's jupyter-server-proxy, in each of its
    modes in turn: ``/proxy/<port>/`` and ``/proxy/absolute/<port>/``.

    ``behind_jupyter(source)`` returns the LiveServer; its ``proxy_url`` is
    the app's address through the proxy.
    """
    prefix = jupyter_service.proxy_prefix(absolute=request.param == "absolute")

    def start(source=None, **kwargs):
        return live(app=create_app(source, TESTING=True, **kwargs), proxy_prefix=prefix)

    return start


@pytest.fixture(params=[technique.name for technique in TECHNIQUES])
def technique(request):
    """Each technique in turn, by name."""
    return request.param


@pytest.fixture
def kernel():
    """A real IPython kernel; ``run(code, cell)`` runs code in it as a front end
    runs a notebook cell, with the cell's id, and returns the value of
    ``value`` afterwards (as text)."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")

    def run(code, cell=None, value="None"):
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {"value": value},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        # JupyterLab and Notebook 7 send the cell's id this way
        metadata = {"cellId": cell} if cell else {}
        request = client.session.msg("execute_request", content, metadata=metadata)
        client.shell_channel.send(request)
        while True:
            reply = client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                break
        assert reply["content"]["status"] == "ok", reply["content"]
        return reply["content"]["user_expressions"]["value"]["data"]["text/plain"]

    yield run
    client.stop_channels()
    manager.shutdown_kernel(now=True)
