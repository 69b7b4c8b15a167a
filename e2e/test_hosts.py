"""DNS rebinding: a page on a name that resolves to this machine must not
read the streams."""

from playwright.sync_api import expect


def test_a_page_on_a_rebound_name_cannot_read_the_stream(live, attacker_browser):
    server = live()
    page = attacker_browser.new_page()
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
