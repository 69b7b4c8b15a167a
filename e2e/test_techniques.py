import threading

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from livestream import create_app, mjpeg
from livestream.sources import sqrt_demo
from testing_support import Stepper, pictures

from .helpers import PICTURES, Readout

HOSTILE = ["<img src=x onerror=alert(1)>", "<script>window.pwned = 1</script>"]


def test_each_message_shows_while_the_stream_is_open(live, readout):
    # the server sends message k only once the page shows message k - 1: a
    # browser that held the stream back would never show the first
    messages = [f"message {i}" for i in range(6)]
    stepper = Stepper(messages)
    server = live(stepper)
    readout.open(server, "count=6")
    # a picture page has no count: it must show the frame drawn from the
    # messages so far, the same pixels as that frame drawn here
    frames = pictures(messages) if readout.picture else None
    for shown in range(1, 6):
        stepper.release.release()
        if readout.picture:
            readout.picture.expect_frame(frames[shown - 1])
        else:
            readout.expect_count(shown)
        readout.expect_open()
    stepper.release.release()
    readout.expect_ended()
    if readout.picture:
        readout.picture.expect_frame(frames[-1])  # the last one, with Done
    else:
        assert readout.texts() == messages
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
    if readout.picture:
        # drawn as pixels, a message has nothing to inject: the server drew
        # the markup as text, the same frame as drawn here, and the page's
        # only image is the stream's
        readout.picture.expect_frame(pictures(HOSTILE)[-1])
        expect(page.locator("img")).to_have_count(1)
    else:
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


@pytest.mark.parametrize("technique", PICTURES)
def test_the_picture_changes_frame_by_frame(live, page, technique):
    # the demo source on its own clock: the image must show at least five
    # different frames before the one that says Done, which is the last
    readout = Readout(page, technique)
    readout.open(live(), "count=30&interval=0.1")
    seen = []
    for _ in range(5):
        state = readout.picture.next_change(seen[-1] if seen else None)
        assert not state["ended"], f"ended after only {len(seen)} frames"
        seen.append(state["hash"])
    readout.expect_ended()
    readout.picture.expect_frame(pictures(list(sqrt_demo(30, 0)))[-1])


def bars(messages):
    """A lesson's own picture: a bar per message, of that height."""
    image = Image.new("RGB", (200, 100), "white")
    draw = ImageDraw.Draw(image)
    for k, value in enumerate(messages):
        draw.rectangle((k * 20, 100 - value * 10, k * 20 + 15, 100), fill="navy")
    return image


@pytest.mark.parametrize("technique", PICTURES)
def test_a_lesson_streams_its_own_picture(live, page, technique):
    values = [3, 7, 5]
    app = create_app(lambda count, interval: iter(values), picture=bars, TESTING=True)
    readout = Readout(page, technique)
    readout.open(live(app=app))
    readout.expect_ended()
    readout.picture.expect_frame(pictures(values, bars)[-1])


@pytest.mark.parametrize("technique", PICTURES)
def test_a_failure_is_the_last_frame(live, page, technique):
    # the picture cannot show an #error element: its last frame says why, on
    # a band of its own colour, over the last picture drawn
    def failing(count=None, interval=None):
        yield 1.5
        yield 2.5
        raise ValueError("sensor unplugged")

    readout = Readout(page, technique)
    readout.open(live(failing))
    readout.picture.expect_band(mjpeg.FAILED_COLOUR)
    readout.picture.expect_frame(pictures(failing())[-1])
