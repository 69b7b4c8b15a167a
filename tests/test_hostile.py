"""Hostile messages through every framing: each arrives exactly, as one
message, or is refused with a clear error. Never sent damaged."""

import html
import json
import logging
import re

import pytest

from livestream import create_app
from livestream.framing import Unsendable, ndjson_line, plain_line
from testing_support import HOSTILE, REFUSED, parse_sse, read_htmx


def received(kind, body):
    """The messages a browser would read from ``body``, and whether it ended well."""
    if kind == "text":
        return body.split("\n")[:-1], None
    if kind == "ndjson":
        return [json.loads(line) for line in body.split("\n")[:-1]], None
    if kind == "html":
        items = re.findall(r'<li class="message">(.*?)</li>\n', body, re.S)
        error = re.search(r"<p id=\"error\">Error: (.*?)</p>", body)
        return [html.unescape(i) for i in items], error and html.unescape(error[1])
    if kind == "htmx":
        messages, ended = read_htmx(body)
        return messages, None if ended == "Done" else ended.removeprefix("Error: ")
    events = parse_sse(body)["events"]
    error = events[-1]["data"] if events[-1].get("event") == "failure" else None
    return [e["data"] for e in events if "id" in e], error


def stream(kind, *messages):
    app = create_app(lambda count, interval: iter(messages), TESTING=True)
    response = app.test_client().get(f"/stream/{kind}")
    return response


# the WebSocket's are in test_websocket.py: a test client cannot open one;
# the picture's in test_mjpeg.py: it draws a message, there is no text to read
@pytest.mark.parametrize(
    "kind", [kind for kind in REFUSED if kind not in ("ws", "jpeg")]
)
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_message_arrives_whole_or_is_refused(kind, name, caplog):
    message = HOSTILE[name]
    with caplog.at_level(logging.ERROR):
        if kind in ("text", "ndjson") and name in REFUSED[kind]:
            # line formats cannot say so in-band: the stream breaks off there
            with pytest.raises(Unsendable, match="cannot carry"):
                stream(kind, "before", message, "after").get_data()
            return
        body = stream(kind, "before", message, "after").get_data().decode()
    messages, error = received(kind, body)
    if name in REFUSED[kind]:
        assert messages == ["before"]
        assert error.startswith("a message was refused: ")
        assert "cannot carry" in error
        assert any(r.exc_info and r.exc_info[0] is Unsendable for r in caplog.records)
    else:
        assert messages == ["before", message, "after"]
        assert error is None


def test_markup_is_escaped_in_html():
    body = stream("html", HOSTILE["markup"]).get_data(as_text=True)
    assert "<img" not in body
    assert "<script>alert" not in body


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({1, 2}, "not JSON serializable"),
        (float("nan"), "Out of range float values"),
        ({"a": float("inf")}, "Out of range float values"),
    ],
)
def test_what_json_cannot_encode_is_refused(message, words):
    with pytest.raises(Unsendable, match=words):
        ndjson_line(message)
    with pytest.raises(Unsendable, match=words):
        plain_line(message)
