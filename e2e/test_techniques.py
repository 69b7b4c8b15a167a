import threading

import pytest
from playwright.sync_api import expect

from testing_support import Stepper

from .helpers import Readout

HOSTILE = ["<img src=x onerror=alert(1)>", "<script>window.pwned = 1</script>"]


def test_each_message_shows_while_the_stream_is_open(live, readout):
    # the server sends message k only once the page shows message k - 1: a
    # browser that held the stream back would never show the first
    stepper = Stepper([f"message {i}" for i in range(6)])
    server = live(stepper)
    readout.open(server, "count=6")
    for shown in range(1, 6):
        stepper.release.release()
        readout.expect_count(shown)
        readout.expect_open()
    stepper.release.release()
    readout.expect_ended()
    assert readout.texts() == [f"message {i}" for i in range(6)]
    assert stepper.closed.wait(5)


@pytest.mark.parametrize("technique", ["xhr", "iframe", "fetch", "sse", "ws", "htmx"])
def test_the_count_climbs_before_the_end(live, page, technique):
    # the demo source on its own clock: the page must show at least five
    # different counts, each higher than the last, before it shows the end
    Readout(page, technique).expect_climbing_count(live())


def test_a_message_is_shown_as_text(live, page, readout):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    readout.open(live(lambda count, interval: iter(HOSTILE)))
    readout.expect_ended()
    assert readout.texts() == HOSTILE
    frame = page.frame_locator("#stream") if readout.technique == "iframe" else page
    expect(frame.locator(".message img")).to_have_count(0)
    expect(frame.locator(".message script")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
    assert dialogs == []


@pytest.mark.parametrize("technique", ["xhr", "iframe", "fetch", "sse", "ws", "htmx"])
def test_a_message_with_newlines_stays_whole(live, page, technique):
    readout = Readout(page, technique)
    messages = ["line one\nline two", "two\n\nblank", {"a": [1, 2]}, ""]
    readout.open(live(lambda count, interval: iter(messages)))
    readout.expect_ended()
    assert readout.texts() == [
        "line one\nline two",
        "two\n\nblank",
        '{"a": [1, 2]}',
        "",
    ]


def test_the_classic_version_cannot_carry_a_newline(live, page):
    # plain lines would split the message, so the server refuses it and breaks
    # the stream off; the classic page cannot tell that from the end
    shown = threading.Event()

    def source(count, interval):
        yield "before"
        shown.wait(10)
        yield "line one\nline two"

    readout = Readout(page, "xhr-polled")
    readout.open(live(source))
    readout.expect_count(1)
    shown.set()
    readout.expect_ended()
    assert readout.texts() == ["before"]


@pytest.mark.parametrize("technique", ["xhr", "fetch", "sse", "ws", "htmx"])
def test_the_log_keeps_the_newest_messages_and_counts_them_all(live, page, technique):
    readout = Readout(page, technique)
    readout.open(live(lambda count, interval: (f"m{i}" for i in range(20))), "keep=5")
    readout.expect_ended()
    expect(page.locator("#count")).to_have_text("20")
    assert readout.texts() == ["m15", "m16", "m17", "m18", "m19"]


@pytest.mark.parametrize("technique", ["xhr", "fetch"])
def test_a_line_that_is_not_json_fails_visibly(live, page, technique):
    # whatever sits between the server and the page (a proxy's error page, a
    # broken middleware) can hand the page a line that is not JSON: the page
    # must say so and stop, not stall on the same line
    page.route(
        "**/stream/ndjson*",
        lambda route: route.fulfill(
            status=200,
            content_type="application/x-ndjson",
            body='"first"\n<html>oops</html>\n"never shown"\n',
        ),
    )
    readout = Readout(page, technique)
    readout.open(live())
    expect(page.locator("#latest")).to_have_text(
        "Error: a line that is not JSON: <html>oops</html>"
    )
    assert readout.texts() == ["first"]
    expect(page.locator("#count")).to_have_text("1")
