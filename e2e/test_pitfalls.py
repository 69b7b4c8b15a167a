"""Notebook 06's browser pitfalls, seen in Chromium."""

import threading
import time

import pytest
from playwright.sync_api import expect

from livestream import serve
from livestream.pitfalls import create_pitfalls_app
from livestream.sources import ticks
from livestream.tools.services import start_nginx
from livestream.tools.timing import RECORD_ARRIVALS, YieldClock


def probe_arrivals(page, url):
    """When each line of the probe page at ``url`` arrived (epoch ms), once
    the page reads Done."""
    page.add_init_script(RECORD_ARRIVALS)
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        # the page may still be parsing when the first look comes
        "document.getElementById('latest')?.textContent === 'Done'"
    )
    return page.evaluate("window.__arrivals")


def held_back(arrivals, clock):
    """Whether no line showed before the source had yielded its last."""
    return min(arrivals) >= clock.times[-1] * 1000


@pytest.mark.parametrize("stream", ["sniffed", "nosniff"])
def test_without_nosniff_chromium_holds_small_messages_back(page, stream):
    # 20 lines of ~8 bytes, less than the ~1 KB Chromium sniffs: without
    # nosniff nothing shows before the last line has been sent
    clock = YieldClock(ticks)
    with serve(create_pitfalls_app(clock, count=20, interval=0.05)) as server:
        arrivals = probe_arrivals(page, f"{server.url}/probe?stream={stream}")
    assert len(arrivals) == 20
    assert held_back(arrivals, clock) == (stream == "sniffed")


@pytest.mark.nginx
@pytest.mark.parametrize("stream", ["unmarked", "nosniff"])
def test_nginx_as_deployed_holds_a_stream_without_x_accel_buffering(page, stream):
    # lesson 06's live pair: through nginx's defaults the unmarked stream's
    # lines (150 bytes, less than nginx's 4 KB buffer) all show after the last
    # was sent; X-Accel-Buffering: no lets each through as it comes
    clock = YieldClock(ticks)
    with (
        serve(create_pitfalls_app(clock, count=20, interval=0.05)) as server,
        start_nginx(server.url) as nginx,
    ):
        arrivals = probe_arrivals(page, f"{nginx.url}/probe?stream={stream}")
    assert len(arrivals) == 20
    assert held_back(arrivals, clock) == (stream == "unmarked")


class Held:
    """A source whose streams stay open until the test lets one end."""

    def __init__(self):
        self.starts = []
        self.finish = threading.Semaphore(0)

    def __call__(self, count, interval):
        self.starts.append(time.time())
        yield "tick\n"
        self.finish.acquire(timeout=30)


@pytest.fixture
def held_server(live):
    """The pitfalls app on a source whose streams stay open until released."""
    held = Held()
    yield held, live(app=create_pitfalls_app(held))
    for _ in range(20):
        held.finish.release()


def first_bytes(page, n):
    # the page may still be parsing: no firstBytes yet is none
    page.wait_for_function(
        f"window.firstBytes?.filter((t) => t !== undefined).length >= {n}"
    )


def test_a_seventh_stream_to_one_host_waits_for_a_connection(page, held_server):
    held, server = held_server
    page.goto(f"{server.url}/connections?streams=7", wait_until="commit")
    first_bytes(page, 6)
    assert len(held.starts) == 6  # six connections, and the seventh queued
    ended_one = time.time()
    held.finish.release()
    page.wait_for_function("window.firstBytes[6] !== undefined")
    assert len(held.starts) == 7
    assert held.starts[6] > ended_one


def test_another_host_name_gets_connections_of_its_own(page, held_server):
    held, server = held_server
    page.goto(
        f"{server.url}/connections?streams=7&other_host=localhost", wait_until="commit"
    )
    first_bytes(page, 7)  # all seven open at once, none has ended
    assert len(held.starts) == 7


@pytest.mark.parametrize(
    ("query", "end", "header"),
    [
        ("stream=no-context&name=ada", "Error: the stream broke off", None),
        ("stream=with-context&name=ada", "Done", None),
        ("stream=late-header&header=X-Set-Late", "Done", "not sent"),
        ("stream=early-header&header=X-Set-Late", "Done", "yes"),
    ],
)
def test_the_probe_page_shows_each_pitfall_beside_its_fix(
    page, live, query, end, header
):
    server = live(app=create_pitfalls_app())
    page.goto(f"{server.url}/probe?{query}", wait_until="commit")
    expect(page.locator("#latest")).to_have_text(end)
    if header:
        expect(page.locator("#header")).to_have_text(header)
    if "context" in query:
        lines = ["start"] if end.startswith("Error") else ["start", "name=ada"]
        expect(page.locator(".message")).to_have_text(lines)


@pytest.mark.proxy
def test_the_probe_page_reads_its_stream_through_a_path_prefix(
    page, live, jupyter_service
):
    # the real jupyter-server-proxy publishes the app under /user/learner/proxy/<port>/
    server = live(
        app=create_pitfalls_app(count=3, interval=0),
        proxy_prefix=jupyter_service.proxy_prefix(),
    )
    url = server.proxy_url + "/probe?stream=nosniff"
    page.goto(jupyter_service.with_token(url), wait_until="commit")
    expect(page.locator("#latest")).to_have_text("Done")
    expect(page.locator("#count")).to_have_text("3")


def test_the_connections_page_says_when_every_stream_has_ended(page, live):
    server = live(app=create_pitfalls_app(count=2, interval=0))
    page.goto(f"{server.url}/connections?streams=7", wait_until="commit")
    expect(page.locator("#latest")).to_have_text("Done")
    expect(page.locator("#count")).to_have_text("7")
