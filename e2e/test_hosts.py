"""DNS rebinding: a page on a name that resolves to this machine must not
read the streams."""

import pytest
from playwright.sync_api import expect

from livestream.tools.chromium import launch_options


@pytest.fixture
def rebinding_browser(browser_type):
    """Chromium that resolves attacker.example to 127.0.0.1, as a rebound DNS
    name would."""
    browser = browser_type.launch(
        **launch_options(),
        args=["--host-resolver-rules=MAP attacker.example 127.0.0.1"],
    )
    yield browser
    browser.close()


def test_a_page_on_a_rebound_name_cannot_read_the_stream(live, rebinding_browser):
    server = live()
    page = rebinding_browser.new_page()
    origin = f"http://attacker.example:{server.port}"
    response = page.goto(origin + "/", wait_until="commit")
    assert response.status == 400
    expect(page.locator("body")).to_contain_text("is not trusted")
    # a script on that origin reads the stream the way the attacker's would
    answer = page.evaluate(
        """async (url) => {
            const response = await fetch(url);
            return {status: response.status, text: await response.text()};
        }""",
        origin + "/stream/text?count=3&interval=0",
    )
    assert answer["status"] == 400
    assert "attacker.example" in answer["text"]
    assert "1.4142135623730951" not in answer["text"]
