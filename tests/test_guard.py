"""The one guard: every route refuses a foreign Host, a cross-site WebSocket or
POST, and a body that is not JSON, in one line that names the setting; every
response says who may frame it and that nothing is to be sniffed."""

import socket

import pytest

from livestream import create_app
from livestream.techniques import TECHNIQUES

FOREIGN = ["http://evil.example", "null", "http://127.0.0.1.evil.example"]
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}
PROMPT = '{"prompt": "hi"}'
JSON = "application/json"


def one_line(response):
    text = response.get_data(as_text=True)
    assert text.count("\n") == 1 and text.endswith("\n")
    return text


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_origin_cannot_open_the_websocket(client, origin):
    response = client.get("/stream/ws", headers={**UPGRADE, "Origin": origin})
    assert response.status_code == 403
    text = one_line(response)
    assert "open a WebSocket" in text and "ALLOWED_ORIGINS" in text


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_origin_cannot_post(client, origin):
    response = client.post(
        "/stream/answer", data=PROMPT, content_type=JSON, headers={"Origin": origin}
    )
    assert response.status_code == 403
    assert "send a POST" in one_line(response)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None]
)
def test_a_post_must_be_json(client, content_type):
    # what a form or a no-cors fetch can send without a preflight
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/stream/answer", data=PROMPT, headers=headers)
    assert response.status_code == 415
    assert "Content-Type: application/json" in one_line(response)


@pytest.mark.parametrize(
    "origin", ["http://localhost", "http://127.0.0.1:8888", "http://localhost:5000"]
)
def test_the_apps_own_and_local_origins_may_post(client, origin):
    response = client.post(
        "/stream/answer", data=PROMPT, content_type=JSON, headers={"Origin": origin}
    )
    assert response.status_code == 200


def test_a_client_without_origin_is_no_browser_and_may_post(client):
    response = client.post("/stream/answer", data=PROMPT, content_type=JSON)
    assert response.status_code == 200


def test_allowed_origins_names_a_hub():
    app = create_app(ALLOWED_ORIGINS=["https://hub.example"], TESTING=True)
    client = app.test_client()
    for origin, status in [
        ("https://hub.example", 200),
        ("https://hub.example:443", 200),
        ("https://hub.example:8443", 403),
        ("http://localhost:8888", 403),  # the local names are no longer listed
    ]:
        response = client.post(
            "/stream/answer", data=PROMPT, content_type=JSON, headers={"Origin": origin}
        )
        assert response.status_code == status, origin
    policy = client.get("/xhr").headers["Content-Security-Policy"]
    assert policy == "frame-ancestors 'self' https://hub.example"


def test_allowed_origins_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIVESTREAM_ALLOWED_ORIGINS", "https://a.example, http://b:*")
    app = create_app(TESTING=True)
    assert app.config["ALLOWED_ORIGINS"] == ["https://a.example", "http://b:*"]


@pytest.mark.parametrize("bad", ["hub.example", "https://hub.example/path", "ftp://x"])
def test_a_bad_allowed_origin_is_named(bad):
    with pytest.raises(ValueError, match="ALLOWED_ORIGINS.*" + bad.split("/")[-1]):
        create_app(ALLOWED_ORIGINS=[bad])


def test_allowed_origins_none_allows_every_origin():
    client = create_app(ALLOWED_ORIGINS=None, TESTING=True).test_client()
    response = client.post(
        "/stream/answer",
        data=PROMPT,
        content_type=JSON,
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 200
    assert "Content-Security-Policy" not in client.get("/xhr").headers


def page_paths():
    yield "/"
    yield "/chat"
    for technique in TECHNIQUES:
        yield technique.path


@pytest.mark.parametrize("path", sorted(set(page_paths())))
def test_every_page_says_who_may_frame_it_and_not_to_sniff(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("frame-ancestors 'self' ")
    assert "http://localhost:*" in policy.split()
    assert "http://127.0.0.1:*" in policy.split()


def test_a_foreign_host_is_refused_naming_the_setting(client):
    response = client.get("/xhr", headers={"Host": "evil.example"})
    assert response.status_code == 400
    text = one_line(response)
    assert "evil.example" in text and "TRUSTED_HOSTS" in text


def test_a_missing_route_is_still_a_404_or_405(client):
    assert (
        client.post("/nowhere", headers={"Origin": "http://evil.example"}).status_code
        == 404
    )
    assert client.post("/xhr").status_code == 405


def test_serve_allows_the_origin_of_its_proxy(live):
    server = live(proxy_prefix="https://hub.example/user/me/proxy/{port}")
    assert "https://hub.example" in server.app.config["ALLOWED_ORIGINS"]
    assert "hub.example" in server.app.config["TRUSTED_HOSTS"]


def handshake(server, origin):
    """The status line a real server answers a WebSocket upgrade with."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        lines = [
            "GET /stream/ws?count=2&interval=0 HTTP/1.1",
            f"Host: 127.0.0.1:{server.port}",
            *(f"{name}: {value}" for name, value in UPGRADE.items()),
            *([f"Origin: {origin}"] if origin else []),
        ]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return sock.makefile("rb").readline().decode().strip()


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://evil.example", "403"),
        ("null", "403"),
        (None, "101"),
        ("same", "101"),
    ],
)
def test_the_real_server_upgrades_only_allowed_origins(live, origin, status):
    server = live()
    if origin == "same":
        origin = server.url
    assert handshake(server, origin).split()[1] == status
