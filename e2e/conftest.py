"""The browser's fixtures, on top of the root conftest.py's: the machine's
Chromium for pytest-playwright, and a technique's readout. Every test here
drives a real Chromium, so every one is marked ``browser``."""

from pathlib import Path

import pytest

from livestream.tools.chromium import launch_options

from .helpers import Readout

HERE = Path(__file__).parent


# tryfirst: the mark must be on each test before ``-m`` deselects by it, and
# this hook sees every test of the session, not just those under e2e/
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch the machine's Chromium when it has one (see livestream.tools.chromium)."""
    return {**browser_type_launch_args, **launch_options()}


@pytest.fixture
def readout(page, technique):
    """The readout of ``technique``'s page in a fresh browser page."""
    return Readout(page, technique)


@pytest.fixture
def attacker_browser(browser_type):
    """Chromium that resolves attacker.example to 127.0.0.1: an attacker's
    site, as a rebound DNS name or as a page that talks to this machine."""
    browser = browser_type.launch(
        **launch_options(),
        args=["--host-resolver-rules=MAP attacker.example 127.0.0.1"],
    )
    yield browser
    browser.close()
