"""The htmx page beyond the shared contract: no script of ours runs, a burst
leaves nothing behind, and htmx's EventSource resumes where it was."""

import json
import math

from playwright.sync_api import expect

from livestream.sources import numbered

from .helpers import Readout, read_across_a_restart


def test_only_the_vendored_scripts_run(live, page):
    readout = Readout(page, "htmx")
    readout.open(live(), "count=3&interval=0")
    readout.expect_ended()
    sources = page.evaluate("[...document.scripts].map((s) => [s.src, s.text])")
    # and the readout's timeline, which watches the log, not the stream
    assert [(src.split("/static/")[1], text) for src, text in sources] == [
        ("vendor/htmx.min.js", ""),
        ("vendor/sse.js", ""),
        ("timeline.js", ""),
    ]


def test_a_burst_leaves_only_the_kept_log(live, page):
    # as fast as the server goes: once the page shows Done, the log is its
    # newest ten items and nothing else (no text node beside them). What the
    # page holds meanwhile (htmx's settle timers) is livestream-bench's to
    # measure: its nodes after 1,000 and 100,000 messages
    readout = Readout(page, "htmx")
    readout.open(live(numbered), "count=3000&interval=0&keep=10")
    readout.expect_ended()
    expect(page.locator("#count")).to_have_text("3000")
    assert page.locator("#output").evaluate("(log) => log.childNodes.length") == 10
    assert readout.texts() == [f"message {i}" for i in range(2990, 3000)]


def test_htmx_resumes_after_the_server_restarts(page):
    # the same app, served again on the same port: htmx's EventSource
    # reconnects with Last-Event-ID, the stream goes on from the next message,
    # and the count goes on from where it was
    readout = read_across_a_restart(page, "htmx")
    readout.expect_count(30)
    assert readout.texts() == [json.dumps(math.sqrt(i)) for i in range(30)]
