"""Serving behind a proxy: the URL prefix, and what the pages ask of the
proxy. test_real_proxy.py runs the same through jupyter-server-proxy."""

import requests

from testing_support import stream_url_in


def test_a_proxy_prefix_goes_in_front_of_every_url(live):
    server = live(proxy_prefix="/user/me/proxy/{port}")
    prefix = f"/user/me/proxy/{server.port}"
    assert server.proxy_url == prefix
    assert server.display("/sse").urls == [f"{prefix}/sse?embed=1"]
    # the server itself still answers on its own paths; its pages link through
    # the proxy
    page = requests.get(server.url + "/xhr?count=2", timeout=5).text
    assert stream_url_in(page) == f"{prefix}/stream/ndjson?count=2&interval=1.0"
    assert f'href="{prefix}/static/style.css"' in page


def test_the_prefix_can_come_from_the_environment(live, monkeypatch):
    monkeypatch.setenv("LIVESTREAM_PROXY_PREFIX", "https://hub.example/u/{port}/")
    server = live()
    assert server.proxy_url == f"https://hub.example/u/{server.port}"
    assert server.display("/xhr").urls == [
        f"https://hub.example/u/{server.port}/xhr?embed=1"
    ]
    page = requests.get(server.url + "/fetch", timeout=5).text
    assert stream_url_in(page).startswith(f"/u/{server.port}/stream/ndjson?")


def test_the_whole_path_works_as_well_as_the_rest_of_it(live):
    # jupyter-server-proxy's absolute mode passes /proxy/absolute/<port>/xhr on
    # whole; its other mode passes /xhr
    server = live(proxy_prefix="/proxy/absolute/{port}")
    for path in [f"/proxy/absolute/{server.port}/xhr?count=2", "/xhr?count=2"]:
        page = requests.get(server.url + path, timeout=5)
        assert page.status_code == 200
        assert stream_url_in(page.text).startswith(
            f"/proxy/absolute/{server.port}/stream/ndjson?"
        )
    assert (
        requests.get(server.url + "/proxy/absolute/1/xhr", timeout=5).status_code == 404
    )


def test_accept_sse_is_a_flag(client):
    response = client.get("/fetch?accept_sse=yes")
    assert response.status_code == 400
    assert response.text == "accept_sse must be 0 or 1, got 'yes'\n"
