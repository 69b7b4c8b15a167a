"""The browser suite against gunicorn, and the live feed in a browser."""

import pytest
from playwright.sync_api import expect

from livestream.feed import publish

from .helpers import Readout

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("technique", ["xhr", "iframe", "fetch", "sse", "ws"])
def test_the_count_climbs_under_gunicorn(page, technique, gunicorn_service):
    Readout(page, technique).expect_climbing_count(gunicorn_service)


def test_the_feed_page_shows_what_is_published(page, gunicorn_service, redis_client):
    # the page starts after the first entry, so it gets the second from the
    # feed's history whenever it connects, and the rest as they come
    first = publish("message 0", client=redis_client)
    publish("message 1", client=redis_client)
    page.goto(f"{gunicorn_service.url}/feed?after={first}", wait_until="commit")
    messages = page.locator("#output .message")
    expect(messages).to_have_count(1)
    for i in range(2, 6):
        publish(f"message {i}", client=redis_client)
        expect(page.locator("#count")).to_have_text(str(i))
    expect(messages).to_have_text([f"message {i}" for i in range(1, 6)])
