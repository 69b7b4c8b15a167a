"""The timeline under every readout (static/timeline.js): when each message
arrived, kept after the end, so that a stream that came one message at a
time and one that came all at once differ after Done; a reconnect's wait and
its repeats; and a log that shows its newest message however long it grows."""

import pytest
from playwright.sync_api import expect

from livestream.sources import numbered

from .helpers import Readout, read_across_a_restart

# 10 messages 0.1 s apart: 0.9 s from the first to the last. The bounds leave
# room for a loaded machine; a burst's spread is far below the lower one
TIMED = "count=10&interval=0.1"
SCHEDULE_MS = 900
BURST = "count=40&interval=0"


@pytest.mark.parametrize("technique", ["fetch", "iframe", "htmx", "mjpeg"])
def test_a_timed_stream_and_a_burst_leave_different_timelines(live, page, technique):
    server = live(numbered)
    readout = Readout(page, technique)
    readout.open(server, TIMED)
    readout.expect_ended()
    # the attributes are set as messages arrive: wait for the whole record
    expect(page.locator("#timeline")).to_contain_text("spread")
    timed = readout.timeline()
    # the picture page counts the frames it sees by looking every 0.1 s
    expect(page.locator("#timeline")).to_have_attribute(
        "data-count", str(timed["count"])
    )
    # (a loaded machine may look less often). What it sees first may be the
    # second picture, seen up to a look late: its spread may fall short of
    # the schedule by two looks or more, still far above a burst's
    assert timed["count"] >= 3 if readout.picture else timed["count"] == 10, timed
    least = SCHEDULE_MS * (0.5 if readout.picture else 0.8)
    assert least <= timed["spread"] <= SCHEDULE_MS * 1.6, timed
    assert 0 < timed["first"] < 2000, timed

    # the server draws each picture (some 15 ms a frame): a burst of 5
    readout.open(server, "count=5&interval=0" if readout.picture else BURST)
    readout.expect_ended()
    expect(page.locator("#timeline")).to_contain_text("spread")
    burst = readout.timeline()
    assert burst["spread"] < 300, burst
    assert burst["count"] >= 1 if readout.picture else burst["count"] == 40
    assert burst["reconnects"] == burst["gap"] == burst["repeated"] == 0


@pytest.mark.parametrize("technique", ["sse", "htmx"])
def test_a_resumed_stream_shows_its_gap_and_nothing_repeated(page, technique):
    # the server restarts after 5 messages; the browser reconnects after
    # 0.2 s (SSE_RETRY_MS) with Last-Event-ID, and the stream goes on
    readout = read_across_a_restart(page, technique)
    readout.expect_count(30)
    timeline = readout.timeline()
    assert timeline["count"] == 30
    assert timeline["reconnects"] == 1, timeline
    assert timeline["gap"] >= 200, timeline
    assert timeline["repeated"] == 0, timeline
    expect(page.locator("#timeline")).to_contain_text("reconnected after")
    expect(page.locator("#timeline")).to_contain_text(", 0 repeated")


def test_a_websocket_that_starts_over_shows_its_repeats(page):
    # resume=0: the page reconnects without saying where it was, and the
    # stream starts over. The timeline tells the repeats by their text
    readout = read_across_a_restart(page, "ws", "resume=0")
    timeline = readout.timeline()
    assert timeline["reconnects"] == 1, timeline
    # the page waits a second before it reconnects
    assert timeline["gap"] >= 1000, timeline
    before = timeline["count"] - 30  # what came before the restart
    assert before >= 5
    assert timeline["repeated"] == before, timeline


@pytest.mark.parametrize("technique", ["fetch", "htmx", "iframe"])
def test_the_newest_message_shows_without_scrolling(live, page, technique):
    readout = Readout(page, technique)
    readout.open(live(numbered), BURST)
    readout.expect_ended()
    readout.expect_count(40)
    expect(readout.newest()).to_have_text("message 39")
    # in view: not scrolled out of the log's box, nor out of the page's
    expect(readout.newest()).to_be_in_viewport()


@pytest.mark.parametrize("technique", ["fetch", "htmx"])
def test_a_short_log_sits_at_the_top_of_its_box(live, page, technique):
    # the compact page of a notebook's frame: the log's box takes the height
    # that is left, and three messages sit at its top, not at its foot
    readout = Readout(page, technique)
    readout.open(live(numbered), "count=3&interval=0&embed=1")
    readout.expect_ended()
    box = page.locator(".log").bounding_box()
    newest = readout.newest().bounding_box()
    assert box["height"] > 5 * newest["height"]  # the box is tall
    assert newest["y"] - box["y"] < newest["height"]
