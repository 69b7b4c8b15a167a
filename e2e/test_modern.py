"""Stop buttons, SSE's resume after a dropped connection, the gallery, and a
failing source."""

import json
import math
import re
import threading

import pytest
from playwright.sync_api import expect

from livestream import create_app, mjpeg, serve
from livestream.sources import sqrt_demo
from livestream.techniques import BY_NAME
from testing_support import Recorder, pictures

from .helpers import NAMES, SCRIPTED, Picture, Readout, read_across_a_restart


@pytest.mark.parametrize("technique", SCRIPTED)
def test_stop_ends_the_stream_and_closes_the_source(live, page, technique):
    interval = 0.1
    recorder = Recorder(forever=True, interval=interval)
    readout = Readout(page, technique)
    readout.open(live(recorder))
    # the polled page updates once a second, so wait for its first batch
    expect(readout.messages.first).to_be_visible()
    readout.stop()
    shown = readout.messages.count()
    # the server notices the closed connection at the source's next message
    assert recorder.closed.wait(interval + 1)
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    expect(readout.messages).to_have_count(shown)
    expect(page.locator("#count")).to_have_text(str(shown))


def test_sse_resumes_after_the_server_restarts(page):
    # the same app, served again on the same port: the browser reconnects with
    # Last-Event-ID and the stream goes on from the next message
    readout = read_across_a_restart(page, "sse")
    assert readout.texts() == [json.dumps(math.sqrt(i)) for i in range(30)]


def test_sse_reconnects_to_a_new_server_only_once_per_drop(page):
    # a finished stream closes its EventSource: the page does not play the
    # stream again on a reconnect, so the count stays at the total
    app = create_app(TESTING=True, SSE_RETRY_MS=100)
    with serve(app) as server:
        readout = Readout(page, "sse")
        readout.open(server, "count=3&interval=0")
        readout.expect_ended()
        assert page.evaluate("source.readyState") == 2  # EventSource.CLOSED
        readout.expect_count(3)


def test_the_gallery_runs_every_technique(live, page):
    server = live()
    page.goto(f"{server.url}/?count=5&interval=0.05", wait_until="commit")
    frames = page.locator("iframe.page")
    expect(frames).to_have_count(len(NAMES))
    for name in NAMES:
        frame = page.frame_locator(f'iframe[data-technique="{name}"]')
        if BY_NAME[name].picture:
            # the picture page's readout is its last frame: Done, over the
            # chart of the five messages
            card = page.locator(f'iframe[data-technique="{name}"]')
            picture = Picture(card.element_handle().content_frame())
            picture.expect_band(mjpeg.DONE_COLOUR)
            picture.expect_frame(pictures(list(sqrt_demo(5, 0)))[-1])
        elif name == "iframe":
            expect(frame.frame_locator("#stream").locator("#done")).to_be_attached()
            expect(frame.frame_locator("#stream").locator(".message")).to_have_count(5)
        else:
            expect(frame.locator("#latest")).to_have_text("Done")
            expect(frame.locator("#count")).to_have_text("5")


@pytest.mark.parametrize("technique", ["xhr", "fetch", "sse", "iframe", "htmx"])
def test_a_failing_source_shows_an_error(live, page, technique):
    # the source fails once the page shows its two messages: a stream that
    # breaks off discards what the browser had not handed to the page yet
    shown = threading.Event()

    def failing(count, interval):
        yield "a"
        yield "b"
        shown.wait(10)
        raise ValueError("sensor unplugged")

    readout = Readout(page, technique)
    readout.open(live(failing))
    readout.expect_count(2)
    shown.set()
    if technique == "iframe":
        frame = page.frame_locator("#stream")
        expect(frame.locator("#error")).to_contain_text("sensor unplugged")
        expect(frame.locator("#done")).not_to_be_attached()
    else:
        expect(page.locator("#latest")).to_have_text(re.compile(r"^Error: "))
        expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    readout.expect_count(2)
