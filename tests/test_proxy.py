"""Serving behind a proxy: the URL prefix, and a proxy that buffers."""

import pytest
import requests

from livestream.proxy import buffering_proxy
from tests.helpers import Recorder, stream_url_in


def test_a_proxy_prefix_goes_in_front_of_every_url(live):
    server = live(proxy_prefix="/user/me/proxy/{port}")
    prefix = f"/user/me/proxy/{server.port}"
    assert server.proxy_url == prefix
    assert server.display("/sse").src == f"{prefix}/sse"
    # the server itself still answers on its own paths; its pages link through
    # the proxy
    page = requests.get(server.url + "/xhr?count=2", timeout=5).text
    assert stream_url_in(page) == f"{prefix}/stream/ndjson?count=2&interval=1.0"
    assert f'href="{prefix}/static/style.css"' in page


def test_the_prefix_can_come_from_the_environment(live, monkeypatch):
    monkeypatch.setenv("LIVESTREAM_PROXY_PREFIX", "https://hub.example/u/{port}/")
    server = live()
    assert server.proxy_url == f"https://hub.example/u/{server.port}"
    assert server.display("/xhr").src == f"https://hub.example/u/{server.port}/xhr"
    page = requests.get(server.url + "/fetch", timeout=5).text
    assert stream_url_in(page).startswith(f"/u/{server.port}/stream/ndjson?")


@pytest.fixture
def behind_proxy(live):
    """Serve ``source`` behind a buffering proxy; return (app server, base URL)."""

    def start(source):
        app_server = live(source, proxy_prefix="/proxy/{port}")
        prefix = f"/proxy/{app_server.port}"
        proxy = live(app=buffering_proxy(app_server.url, prefix))
        return app_server, proxy.url + prefix

    return start


def test_the_proxy_passes_whole_responses_on(behind_proxy):
    _, base = behind_proxy(None)
    response = requests.get(base + "/stream/ndjson?count=3&interval=0", timeout=5)
    assert response.status_code == 200
    assert response.text == "0.0\n1.0\n1.4142135623730951\n"
    assert response.headers["Content-Length"] == str(len(response.content))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(base + "/nowhere", timeout=5).status_code == 404


def test_only_event_streams_get_through_the_proxy_as_they_come(behind_proxy):
    # the second message is 30 s away, so the first can only arrive before it
    # if the proxy passes it on by itself
    _, base = behind_proxy(Recorder(["first", "second"], interval=30))
    with requests.get(base + "/stream/sse", stream=True, timeout=5) as events:
        received = b""
        for chunk in events.iter_content(chunk_size=None):
            received += chunk
            if b"data: first" in received:
                break
        assert b"data: first" in received
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(base + "/stream/ndjson", timeout=(5, 1))


def test_last_event_id_goes_through_the_proxy(behind_proxy):
    _, base = behind_proxy(None)
    response = requests.get(
        base + "/stream/sse?count=3&interval=0",
        headers={"Last-Event-ID": "1"},
        timeout=5,
    )
    assert "id: 2\ndata: 1.4142135623730951\n" in response.text
    assert "id: 1\n" not in response.text
