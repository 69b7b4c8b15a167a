"""The streamed answer in a browser: it grows as it is made, Stop ends it on
the server, what it sends is shown as text, and bad bodies get their 400."""

import threading

import pytest
from playwright.sync_api import expect

from livestream import create_app
from testing_support import HOSTILE, wait_until


class StepAnswer:
    """An answer whose pieces go out only when the test releases them."""

    def __init__(self, pieces):
        self.pieces = pieces
        self.release = threading.Semaphore(0)
        self.closed = threading.Event()
        self.prompts = []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        try:
            for piece in self.pieces:
                # bounded: a test that failed must not leave the thread waiting
                if not self.release.acquire(timeout=30):
                    return
                yield piece
        finally:
            self.closed.set()


def open_chat(page, live, answer, query=""):
    server = live(app=create_app(answer=answer, TESTING=True))
    page.goto(f"{server.url}/chat?{query}", wait_until="commit")
    return server


def test_the_answer_grows_while_it_is_made(live, page):
    answer = StepAnswer(["One", " two", " three"])
    open_chat(page, live, answer)
    page.get_by_label("Prompt").fill("count for me")
    page.get_by_role("button", name="Send").click()
    shown = page.locator("#answer")
    for k, text in enumerate(["One", "One two", "One two three"], 1):
        answer.release.release()
        expect(shown).to_have_text(text)
        expect(page.locator("#count")).to_have_text(str(k))
    expect(page.locator("#latest")).to_have_text("Done")
    assert answer.prompts == ["count for me"]


def test_stop_ends_the_answer_on_the_server(live, page):
    answer = StepAnswer([f" word{i}" for i in range(1000)])
    server = open_chat(page, live, answer, "prompt=go&ask=1")
    answer.release.release()
    expect(page.locator("#answer")).to_have_text(" word0")
    assert server.active_streams == 1
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#latest")).to_have_text("Stopped")
    # the source is closed at its next piece, once the server saw the abort
    assert wait_until(lambda: server.active_streams == 0, 2)
    answer.release.release()
    assert answer.closed.wait(2)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_the_answer_is_shown_as_text(live, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    pieces = [HOSTILE["markup"], "<script>window.pwned = 1</script>", "\nend"]
    open_chat(page, live, lambda prompt: iter(pieces), "prompt=x&ask=1")
    expect(page.locator("#latest")).to_have_text("Done")
    assert page.locator("#answer").evaluate("e => e.textContent") == "".join(pieces)
    expect(page.locator("#answer img")).to_have_count(0)
    expect(page.locator("#answer script")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
    assert dialogs == []


def test_the_default_answer_echoes_the_prompt_inertly(live, page):
    open_chat(page, live, None, "prompt=%3Cb%3Ebold%3C/b%3E&ask=1")
    expect(page.locator("#latest")).to_have_text("Done")
    expect(page.locator("#answer")).to_contain_text("You asked: <b>bold</b>")
    expect(page.locator("#answer b")).to_have_count(0)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("'not json'", "400 the body must be JSON"),
        ("JSON.stringify({question: 'hi'})", "400 prompt is missing"),
        ("JSON.stringify({prompt: 42})", "400 prompt must be a string, got '42'"),
        ("'x'.repeat(20000)", "413 the request body must be at most 16384 bytes"),
    ],
)
def test_a_bad_body_is_refused(live, page, body, said):
    open_chat(page, live, None)
    expect(page.locator("#latest")).to_have_text("waiting for a prompt")
    answer = page.evaluate(
        f"""async () => {{
          const r = await fetch("/stream/answer", {{
            method: "POST",
            headers: {{"Content-Type": "application/json"}},
            body: {body},
          }});
          return `${{r.status}} ${{await r.text()}}`;
        }}"""
    )
    assert answer.startswith(said)
    assert answer.count("\n") == 1
