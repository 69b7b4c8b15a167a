"""Every technique's page through the real jupyter-server-proxy, in both of
its modes, as a learner on JupyterHub or Binder sees it: the script
techniques stream, the iframe and the classic polled page arrive at the end,
and a stream that breaks off is an error, not messages."""

import re
import threading

import pytest
from playwright.sync_api import expect

from livestream.sources import sqrt_demo
from livestream.techniques import BY_NAME
from livestream.tools.timing import RECORD_ARRIVALS, YieldClock
from livestream.tools.wire import moments
from testing_support import pictures

from .helpers import PICTURES, Readout

pytestmark = pytest.mark.proxy

COUNT, INTERVAL = 20, 0.1
QUERY = f"count={COUNT}&interval={INTERVAL}"


def open_behind(page, server, jupyter, technique, query=QUERY):
    """Open ``technique``'s page through the proxy, recording arrivals; the
    token in the first URL logs the browser in, as a hub's cookie would."""
    page.add_init_script(RECORD_ARRIVALS)
    path = BY_NAME[technique].path
    url = f"{server.proxy_url}{path}{'&' if '?' in path else '?'}{query}"
    page.goto(jupyter.with_token(url), wait_until="commit")
    return Readout(page, technique)


def arrivals(page):
    """When each message appeared on the page, in seconds (time.time())."""
    return sorted(ms / 1000 for ms in page.evaluate("window.__arrivals"))


@pytest.mark.parametrize("technique", ["fetch", "xhr", "sse", "ws", "htmx"])
def test_every_script_technique_streams_through_the_proxy(
    behind_jupyter, jupyter_service, page, technique
):
    readout = open_behind(page, behind_jupyter(), jupyter_service, technique)
    readout.expect_ended()
    readout.expect_count(COUNT)
    assert moments(arrivals(page)) >= COUNT // 2


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
def test_htmx_asks_for_exactly_an_event_stream(behind_jupyter, jupyter_service, page):
    # the header the proxy streams for: htmx's SSE extension opens an
    # EventSource, which sends it (htmx 4's hx-sse would not: see
    # static/vendor/README.md)
    with page.expect_request("**/stream/htmx?*") as opened:
        readout = open_behind(page, behind_jupyter(), jupyter_service, "htmx")
    assert opened.value.headers["accept"] == "text/event-stream"
    readout.expect_ended()


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
@pytest.mark.parametrize("technique", ["fetch", "xhr"])
def test_without_the_header_fetch_and_xhr_arrive_at_the_end(
    behind_jupyter, jupyter_service, page, technique
):
    clock = YieldClock(sqrt_demo)
    server = behind_jupyter(clock)
    query = f"{QUERY}&accept_sse=0"
    readout = open_behind(page, server, jupyter_service, technique, query)
    readout.expect_ended()
    readout.expect_count(COUNT)
    assert arrivals(page)[0] >= clock.times[-1]


def test_the_classic_polled_page_arrives_at_the_end(
    behind_jupyter, jupyter_service, page
):
    clock = YieldClock(sqrt_demo)
    readout = open_behind(page, behind_jupyter(clock), jupyter_service, "xhr-polled")
    readout.expect_ended()
    readout.expect_count(COUNT)
    assert arrivals(page)[0] >= clock.times[-1]


def test_the_iframe_arrives_at_the_end(behind_jupyter, jupyter_service, page):
    clock = YieldClock(sqrt_demo)
    readout = open_behind(page, behind_jupyter(clock), jupyter_service, "iframe")
    # polled on every animation frame: the moment the first message is there,
    # the server has already sent the last one
    page.wait_for_function(
        """() => {
          const doc = document.querySelector("#stream").contentDocument;
          return doc && doc.querySelector(".message");
        }"""
    )
    assert len(clock.times) == COUNT
    readout.expect_ended()
    readout.expect_count(COUNT)


@pytest.mark.parametrize("technique", PICTURES)
def test_the_picture_arrives_at_the_end(
    behind_jupyter, jupyter_service, page, technique
):
    # an <img> asks for images, so the proxy collects the stream whole: the
    # first frame the page shows (polled on every animation frame) comes
    # after the last was drawn, and the picture ends on the last, Done.
    # Which part Chromium paints first out of a body that came whole is its
    # own affair (on a loaded machine, once, not yet the last)
    clock = YieldClock(sqrt_demo)
    readout = open_behind(page, behind_jupyter(clock), jupyter_service, technique)
    readout.picture.next_change()
    assert len(clock.times) == COUNT
    readout.picture.expect_frame(pictures(list(sqrt_demo(COUNT, 0)))[-1])


def breaking(count, interval):
    """Two messages, then the source fails: the stream breaks off."""
    yield "a"
    yield "b"
    raise ValueError("sensor unplugged")


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
@pytest.mark.parametrize("technique", ["fetch", "xhr"])
def test_a_broken_stream_through_the_proxy_is_an_error(
    behind_jupyter, jupyter_service, page, technique
):
    # streamed, the proxy ends the broken stream with a note of its own, not
    # a newline, and a 200; when the break comes before the proxy has passed
    # anything on, it answers 599 instead. Either way the page must say so,
    # not call it done
    readout = open_behind(page, behind_jupyter(breaking), jupyter_service, technique)
    expect(readout.end).to_have_text(
        re.compile(r"^Error: (the stream broke off mid-line: |HTTP 599)")
    )


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
@pytest.mark.parametrize("technique", ["fetch", "xhr"])
def test_an_error_status_says_so(behind_jupyter, jupyter_service, page, technique):
    # collected whole, a broken stream is the proxy's HTML error page with
    # status 599, as after its 300 s limit: the page says so and shows none
    # of the error page's lines as messages
    server = behind_jupyter(breaking)
    readout = open_behind(page, server, jupyter_service, technique, "accept_sse=0")
    expect(readout.end).to_have_text("Error: HTTP 599")
    readout.expect_count(0)


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
def test_the_classic_page_shows_an_error_page_as_messages(
    behind_jupyter, jupyter_service, page
):
    # the classic answer as it was, kept for lesson 04's comparison
    readout = open_behind(page, behind_jupyter(breaking), jupyter_service, "xhr-polled")
    readout.expect_ended()
    expect(readout.messages.first).to_have_text("<!DOCTYPE HTML>")


@pytest.mark.parametrize("behind_jupyter", ["port"], indirect=True)
def test_the_streamed_answer_grows_through_the_proxy(
    behind_jupyter, jupyter_service, page
):
    # each piece goes out only once the page shows the one before: a proxy
    # that held the answer back would never show the first
    release = threading.Semaphore(0)

    def answer(prompt):
        for i in range(3):
            if not release.acquire(timeout=30):
                return
            yield f" piece{i}"

    server = behind_jupyter(answer=answer)
    url = f"{server.proxy_url}/chat?prompt=go&ask=1"
    page.goto(jupyter_service.with_token(url), wait_until="commit")
    shown = ""
    for i in range(3):
        release.release()
        shown += f" piece{i}"
        expect(page.locator("#answer")).to_have_text(shown)
    expect(page.locator("#latest")).to_have_text("Done")
