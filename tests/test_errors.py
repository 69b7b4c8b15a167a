"""A source that fails mid-stream: the page is told, the server logs it and
goes on serving."""

import logging

import pytest
import requests

from livestream import create_app
from testing_support import parse_sse, wait_until


def failing(count, interval):
    yield "a"
    yield "b"
    raise ValueError("sensor unplugged")


def test_a_line_stream_breaks_off_and_the_server_logs_it(live):
    server = live(failing)
    with requests.get(server.url + "/stream/ndjson", stream=True, timeout=5) as r:
        received = b""
        # the body is cut off before its end: the client can tell
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in r.iter_content(chunk_size=None):
                received += chunk
    assert received == b'"a"\n"b"\n'
    # kept by the server, with its traceback, not printed into a cell
    assert wait_until(lambda: server.errors, 5)
    logged = "\n".join(server.errors)
    assert "Traceback" in logged
    assert "ValueError: sensor unplugged" in logged
    # and other clients are still served
    assert requests.get(server.url + "/status", timeout=5).status_code == 200
    assert requests.get(server.url + "/xhr", timeout=5).status_code == 200


def test_the_html_stream_ends_with_an_error_element(caplog):
    client = create_app(failing, TESTING=True).test_client()
    with caplog.at_level(logging.ERROR):
        html = client.get("/stream/html").get_data(as_text=True)
    assert html.count('class="message"') == 2
    assert (
        '<p id="error">Error: the source failed: ValueError: sensor unplugged</p>'
        in html
    )
    assert 'id="done"' not in html
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info[0] is ValueError


def test_the_sse_stream_ends_with_a_failure_event(caplog):
    client = create_app(failing, TESTING=True).test_client()
    with caplog.at_level(logging.ERROR):
        stream = parse_sse(client.get("/stream/sse").get_data(as_text=True))
    assert stream["events"] == [
        {"id": "0", "data": "a"},
        {"id": "1", "data": "b"},
        {"event": "failure", "data": "the source failed: ValueError: sensor unplugged"},
    ]
    assert any(r.exc_info for r in caplog.records)
