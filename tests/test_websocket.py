"""The WebSocket stream: its query checked before the upgrade, one message
per WebSocket message, the resume token, a client that leaves, and the
settings that limit what a client may send (tested against every server in
test_websocket_servers.py)."""

import pytest
import simple_websocket

from livestream import create_app, serve
from livestream.sources import numbered
from testing_support import HOSTILE, REFUSED, Recorder, wait_until

from .websocket_apps import quiet_app
from .websocket_raw import CLOSE, TEXT, FrameReader, close_code, frame, upgrade

# what a browser sends to open a WebSocket
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def read_all(server, query="", ends=b""):
    """Every text message of ``/stream/ws?query``, and the close code and
    reason; the binary message before the close must be ``ends``."""
    url = server.url.replace("http", "ws", 1) + "/stream/ws?" + query
    ws = simple_websocket.Client.connect(url)
    messages = []
    try:
        while True:
            messages.append(ws.receive(timeout=10))
    except simple_websocket.ConnectionClosed as closed:
        assert isinstance(messages[-1], bytes), messages[-3:]
        assert messages.pop().startswith(ends)
        return messages, closed.reason, closed.message


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("count=abc", "count"),
        ("count=-1", "count"),
        ("interval=nan", "interval"),
        ("count=3&after=3", "after"),
        ("after=x", "after"),
        ("count=3&after=-1", "after"),
    ],
)
def test_a_bad_query_is_refused_before_the_upgrade(client, query, name):
    response = client.get(f"/stream/ws?{query}", headers=UPGRADE)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.count("\n") == 1
    assert text.startswith(f"{name} must be")


def test_without_the_upgrade_it_says_what_it_is(client):
    response = client.get("/stream/ws")
    assert response.status_code == 400
    assert response.get_data(as_text=True) == (
        '/stream/ws is a WebSocket: open it with new WebSocket("ws://...")\n'
    )


def test_one_message_per_websocket_message_then_1000(live):
    messages, code, reason = read_all(live(numbered), "count=4&interval=0")
    assert messages == ["message 0", "message 1", "message 2", "message 3"]
    assert (code, reason) == (1000, "end")


def test_the_resume_token_starts_after_the_message_named(live):
    messages, code, _ = read_all(live(numbered), "count=5&interval=0&after=2")
    assert messages == ["message 3", "message 4"]
    assert code == 1000


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_message_arrives_whole_or_is_refused(live, name):
    message = HOSTILE[name]
    server = live(lambda count, interval: iter(["before", message, "after"]))
    refused = name in REFUSED["ws"]
    messages, code, reason = read_all(server, ends=b"a message" if refused else b"")
    if refused:
        assert messages == ["before"]
        assert code == 1011
        assert reason.startswith("a message was refused: WebSocket cannot carry")
    else:
        assert messages == ["before", message, "after"]
        assert code == 1000


def test_a_failing_source_closes_with_1011():
    def source(count, interval):
        yield "one"
        raise RuntimeError("sensor unplugged")

    with serve(create_app(source, TESTING=True)) as server:
        messages, code, reason = read_all(server, ends=b"the source failed")
    assert messages == ["one"]
    assert (code, reason) == (1011, "the source failed: RuntimeError: sensor unplugged")


def test_a_client_that_leaves_ends_the_source(live):
    recorder = Recorder(forever=True, interval=0.5)
    server = live(recorder)
    ws = simple_websocket.Client.connect(
        server.url.replace("http", "ws", 1) + "/stream/ws"
    )
    assert ws.receive(timeout=5) == "tick 0"
    assert server.active_streams == 1
    ws.close()
    # within one interval plus 1 s, even though the source is mid-wait
    assert wait_until(lambda: server.active_streams == 0, 1.5)
    assert recorder.closed.wait(1.5)


@pytest.mark.parametrize("name", ["WS_MAX_MESSAGE_BYTES", "WS_MAX_MESSAGES_PER_SECOND"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "many", True])
def test_the_limits_on_what_a_client_sends_are_checked(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be a whole number above 0$"):
        create_app(**{name: value})


def test_the_limits_can_be_set_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIVESTREAM_WS_MAX_MESSAGES_PER_SECOND", "5")
    assert create_app().config["WS_MAX_MESSAGES_PER_SECOND"] == 5


def test_the_size_limit_is_the_one_configured(live):
    server = live(app=quiet_app(WS_MAX_MESSAGE_BYTES=10))
    status, _, rest, sock = upgrade(server.url, timeout=10)
    assert status == 101
    with sock:
        sock.sendall(frame(TEXT, b"ten bytes!") + frame(TEXT, b"eleven byte"))
        reader = FrameReader(sock, rest)
        while (message := reader.message())[0] != CLOSE:
            pass
    assert close_code(message[1]) == (
        1009,
        "a message over 10 bytes: WS_MAX_MESSAGE_BYTES",
    )


def test_a_server_that_keeps_its_socket_says_so(client):
    # Flask's test client hands over no socket to speak WebSocket on
    response = client.get("/stream/ws", headers=UPGRADE)
    assert response.status_code == 501
    assert response.get_data(as_text=True).count("\n") == 1


def test_a_handshake_the_library_cannot_read_is_a_400(live):
    # with every Host allowed, a request without one reaches the handshake,
    # which simple-websocket cannot parse as HTTP/1.1
    server = live(app=create_app(TRUSTED_HOSTS=None))
    status, headers, body, sock = upgrade(server.url, headers={"Host": None})
    with sock:
        while len(body) < int(headers["content-length"]):
            body += sock.recv(4096)
    assert status == 400
    assert body == b"not a WebSocket handshake: Bad HTTP message\n"
