"""The vendored htmx files are the ones static/vendor/README.md names: their
SHA-256 sums, the versions in fetch.sh, the note and inside htmx itself agree,
and the page loads them from the app, not from a CDN."""

import hashlib
import re

from livestream import create_app
from livestream.app import STATIC

VENDOR = STATIC / "vendor"
FILES = ["htmx.min.js", "sse.js", "LICENSE.htmx.org", "LICENSE.htmx-ext-sse"]


def pinned():
    """The versions fetch.sh fetches: ``{"HTMX": "2.0.11", ...}``."""
    script = (VENDOR / "fetch.sh").read_text()
    return dict(re.findall(r"^(HTMX\w*)=(\S+)$", script, re.M))


def test_every_vendored_file_has_its_recorded_sum():
    sums = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    assert sorted(sums) == sorted(FILES)
    for name in FILES:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sums[name]


def test_the_versions_agree():
    versions = pinned()
    assert set(versions) == {"HTMX", "HTMX_EXT_SSE"}
    # htmx says its own version: the file is the release fetch.sh names
    htmx = (VENDOR / "htmx.min.js").read_text()
    assert re.findall(r'version:"([^"]+)"', htmx) == [versions["HTMX"]]
    note = (VENDOR / "README.md").read_text()
    assert f"`htmx.org@{versions['HTMX']}`" in note
    assert f"`htmx-ext-sse@{versions['HTMX_EXT_SSE']}`" in note
    # the extension is htmx 2's, and htmx is 2.x
    assert versions["HTMX"].startswith("2.")
    assert "htmx.defineExtension('sse'" in (VENDOR / "sse.js").read_text()


def test_the_licences_are_the_packages():
    for name in ("LICENSE.htmx.org", "LICENSE.htmx-ext-sse"):
        text = (VENDOR / name).read_text()
        assert "Permission to use, copy, modify, and/or distribute" in text


def test_the_htmx_page_loads_them_from_the_app():
    client = create_app(TESTING=True).test_client()
    page = client.get("/htmx")
    assert page.status_code == 200
    sources = re.findall(r'<script src="([^"]+)"', page.text)
    # and then ours that records when each item arrived, not the technique's
    assert sources == [
        "/static/vendor/htmx.min.js",
        "/static/vendor/sse.js",
        "/static/timeline.js",
    ]
    for source in sources[:2]:
        with client.get(source) as script:
            assert script.status_code == 200
            assert script.data == (VENDOR / source.rsplit("/", 1)[1]).read_bytes()
