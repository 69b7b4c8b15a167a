"""What lesson 06 measures of its pitfalls: how long the first bytes take,
when each piece of a body came, how long a source runs on after its client
left, and when each of a page's streams began and ended."""

import time

import requests

from .timing import in_browser


def seconds_to_first_bytes(url):
    """How long a client waits for the first bytes of the body at ``url``."""
    began = time.monotonic()
    with requests.get(url, stream=True, timeout=60) as response:
        next(response.iter_content(chunk_size=None), None)
        return time.monotonic() - began


def pieces(url):
    """Read the body at ``url`` as it comes: for each piece, the seconds since
    the request and its size in bytes, as sent (still compressed, if it was).
    """
    began = time.monotonic()
    found = []
    with requests.get(url, stream=True, timeout=60) as response:
        for piece in response.raw.stream(65536, decode_content=False):
            found.append((time.monotonic() - began, len(piece)))
    return found


def seconds_to_close(url, closings, timeout=10.0):
    """Read the first line at ``url`` and hang up; how long until the source
    appends a new ``time.monotonic()`` to ``closings`` (in its ``finally``).

    None if it has not within ``timeout`` seconds.
    """
    with requests.get(url, stream=True, timeout=60) as response:
        next(response.iter_lines(chunk_size=None), None)
    left = time.monotonic()
    while time.monotonic() < left + timeout:
        later = [closed for closed in list(closings) if closed > left]
        if later:
            return min(later) - left
        time.sleep(0.02)
    return None


def connection_times(url, timeout=60.0):
    """Open the connections page at ``url`` in Chromium; when each stream began
    and ended, in seconds from the page's start."""

    def task(page):
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            # the page may still be parsing: no window.ended yet is not done
            "window.ended?.filter((t) => t !== undefined).length"
            " === document.querySelectorAll('#streams li').length"
            " && window.ended.length > 0",
            timeout=timeout * 1000,
        )
        first, ended = page.evaluate("[window.firstBytes, window.ended]")
        return [(f / 1000, e / 1000) for f, e in zip(first, ended, strict=True)]

    return in_browser(task)
