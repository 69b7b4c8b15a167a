"""A page on another site, in a real Chromium, against a server on this
machine: it cannot read a stream through a WebSocket, start the answer
generator with a form or a no-cors fetch, or frame the chat page."""

import pytest
from playwright.sync_api import expect

from livestream import create_app
from testing_support import Recorder, wait_until

# what the attacker's site serves: an empty page to run scripts in
ATTACKER_PAGE = b"<!doctype html><title>attacker</title><body></body>"


# a script that shows ``url`` in a frame of the page
FRAME = """(url) => {
    const frame = document.createElement("iframe");
    frame.src = url;
    document.body.append(frame);
}"""


def attacker_site(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [ATTACKER_PAGE]


@pytest.fixture
def attack(live, attacker_browser):
    """``(target, page)``: a livestream server whose answer generator records
    whether it ran, and a page on http://attacker.example:<port>/."""
    recorder = Recorder(["secret"])
    target = live(app=create_app(answer=lambda prompt: recorder(0, 0), TESTING=True))
    site = live(app=attacker_site)
    page = attacker_browser.new_page()
    page.goto(f"http://attacker.example:{site.port}/", wait_until="commit")
    target.recorder = recorder
    return target, page


def test_a_foreign_page_cannot_read_the_websocket(attack):
    target, page = attack
    got = page.evaluate(
        """(url) => new Promise((resolve) => {
            const messages = [];
            const ws = new WebSocket(url);
            ws.onmessage = (event) => messages.push(String(event.data));
            ws.onclose = (event) => resolve({messages, code: event.code});
        })""",
        target.url.replace("http", "ws") + "/stream/ws?count=3&interval=0",
    )
    assert got["messages"] == []
    assert got["code"] == 1006  # the handshake was refused: no connection


def test_a_foreign_form_cannot_start_the_answer(attack):
    target, page = attack
    # text/plain makes a body that reads as JSON: {"prompt": "x", "=": ""}
    page.evaluate(
        """(url) => {
            const form = document.createElement("form");
            form.method = "POST";
            form.action = url;
            form.enctype = "text/plain";
            const field = document.createElement("input");
            field.name = '{"prompt": "x", "';
            field.value = '": ""}';
            form.append(field);
            document.body.append(form);
            form.submit();
        }""",
        target.url + "/stream/answer",
    )
    # the form's answer replaces the page: the refusal, not the answer
    expect(page.locator("body")).to_contain_text("may not send a POST")
    assert not target.recorder.started.is_set()


def test_a_foreign_no_cors_fetch_cannot_start_the_answer(attack):
    target, page = attack
    page.evaluate(
        """(url) => fetch(url, {
            method: "POST", mode: "no-cors", body: '{"prompt": "x"}',
        })""",
        target.url + "/stream/answer",
    )
    assert not wait_until(target.recorder.started.is_set, timeout=1.0)


def test_a_foreign_page_cannot_frame_the_chat(attack):
    target, page = attack
    url = target.url + "/chat?prompt=x&ask=1"
    with page.expect_response(url) as response:
        page.evaluate(FRAME, url)
    # the page came, with a policy that keeps it out of this frame: Chromium
    # shows its own error page instead, and the chat's script never runs
    assert "frame-ancestors" in response.value.headers["content-security-policy"]
    expect(page.frame_locator("iframe").locator("#latest")).to_have_count(0)
    assert not wait_until(target.recorder.started.is_set, timeout=1.0)


def test_a_local_page_may_frame_the_chat(live, page):
    # a notebook's page on this machine, such as JupyterLab on another port
    recorder = Recorder(["hello"])
    target = live(app=create_app(answer=lambda prompt: recorder(0, 0), TESTING=True))
    site = live(app=attacker_site)
    page.goto(f"http://localhost:{site.port}/", wait_until="commit")
    page.evaluate(FRAME, target.url + "/chat?prompt=x&ask=1&embed=1")
    expect(page.frame_locator("iframe").locator("#latest")).to_have_text("Done")
    assert recorder.started.is_set()
