"""Hostile messages on every page: shown exactly and inertly, or refused."""

import json

import pytest
from playwright.sync_api import expect

from testing_support import HOSTILE, REFUSED, pictures

from .helpers import NAMES, Readout

FORMAT = {
    "xhr": "ndjson",
    "xhr-polled": "text",
    "iframe": "html",
    "fetch": "ndjson",
    "sse": "sse",
    "ws": "ws",
    "mjpeg": "jpeg",
    "htmx": "htmx",
}
# one message each format refuses (NDJSON only refuses what JSON cannot encode)
REFUSE = {
    "ndjson": {"reading": float("nan")},
    "html": HOSTILE["nul"],
    "sse": HOSTILE["crlf"],
    "ws": HOSTILE["lone surrogate"],
    "htmx": HOSTILE["nul"],
}


def test_every_technique_has_a_format():
    assert set(FORMAT) == set(NAMES)


@pytest.mark.parametrize("technique", NAMES)
def test_what_a_format_carries_arrives_exactly(live, page, technique):
    kept = [m for name, m in HOSTILE.items() if name not in REFUSED[FORMAT[technique]]]
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    readout = Readout(page, technique)
    readout.open(live(lambda count, interval: iter(kept)))
    readout.expect_ended()
    if readout.picture:
        # a picture draws each message's text, cut to fit: never exact, but
        # the frame shown is the one drawn here from the same messages
        readout.picture.expect_frame(pictures(kept)[-1])
        assert dialogs == []
        return
    readout.expect_count(len(kept))
    # compared in the page: a lone surrogate would not survive the trip to Python
    same = readout.messages.evaluate_all(
        "(items, sent) => JSON.parse(sent).map((m, k) => items[k].textContent === m)",
        json.dumps(kept),
    )
    assert same == [True] * len(kept)
    assert dialogs == []
    assert page.evaluate("window.pwned") is None


@pytest.mark.parametrize("technique", ["xhr", "fetch", "iframe", "sse", "ws", "htmx"])
def test_a_refused_message_shows_an_error(live, page, technique):
    refused = REFUSE[FORMAT[technique]]
    readout = Readout(page, technique)
    readout.open(live(lambda count, interval: iter(["before", refused])))
    if technique == "iframe":
        error = page.frame_locator("#stream").locator("#error")
        expect(error).to_contain_text("HTML cannot carry a NUL character")
    else:
        expect(page.locator("#latest")).to_contain_text("Error: ")
    if technique in ("sse", "ws", "htmx"):
        # each says why in-band: an event, a close reason, the end event
        said = {
            "sse": "SSE cannot carry",
            "ws": "WebSocket cannot carry",
            "htmx": "HTML cannot carry a NUL character",
        }
        expect(page.locator("#latest")).to_contain_text(said[technique])
