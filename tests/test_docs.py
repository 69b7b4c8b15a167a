"""The README and docs/ link to what exists: every relative link names a file
of the repository, and every #anchor a heading of the page it points at."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]

# [text](target) and ![alt](target), an optional "title" after the target
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text):
    """``text`` without code, where brackets and parentheses are not links."""
    return CODE.sub("", FENCE.sub("", text))


def anchors(text):
    """The anchors GitHub gives a page's headings."""
    found = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        # lower case; drop what is not a letter, digit, space, - or _;
        # a space becomes -; a repeated heading gets -1, -2, ...
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


def missing(linked, anchor):
    """Whether the file ``linked``, or the heading ``anchor`` on it, is not there."""
    if not linked.exists():
        return True
    if anchor and linked.suffix == ".md":
        return anchor not in anchors(linked.read_text())
    return False


def broken_links(page):
    """Every relative link of ``page`` whose file or #anchor is not there."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path if path else page).resolve()
        # a link out of the repository would break in any other checkout
        if ROOT.resolve() not in linked.parents or missing(linked, anchor):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "there.md").write_text("# A page\n\n## Its part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# The page\n[up](#the-page) [down](#nowhere)\n"
        "[fine](there.md#its-part) [gone](missing.md) [no part](there.md#nope)\n"
        "![no picture](missing.png) [out](../elsewhere.md) [web](https://x.example)\n"
        "`[in code](missing.md)`\n"
    )
    assert broken_links(page) == [
        "#nowhere",
        "missing.md",
        "there.md#nope",
        "missing.png",
        "../elsewhere.md",
    ]


def test_the_readme_links_every_docs_page():
    assert len(DOCS) >= 2  # the reference lives in docs/, a subject a page
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in LINK.findall(prose((ROOT / "README.md").read_text()))
    }
    assert {page.resolve() for page in DOCS} <= linked


def test_the_gallery_picture_is_small_and_shown():
    picture = ROOT / "docs" / "gallery.png"
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert picture.stat().st_size < 150_000  # a README picture, not a download
    assert "](docs/gallery.png)" in (ROOT / "README.md").read_text()


def test_the_layout_gives_every_module_a_line():
    layout = (ROOT / "docs" / "layout.md").read_text()
    named = set(re.findall(r"`(\w+\.py)`:", layout))
    # tools/__init__.py holds only a docstring; the package's is its public API
    modules = {
        *(path.name for path in ROOT.glob("*.py")),
        *(path.name for path in (ROOT / "livestream").glob("*.py")),
        *(path.name for path in (ROOT / "livestream" / "tools").glob("[!_]*.py")),
    }
    assert sorted(modules - named) == []  # a module without its line
    assert sorted(named - modules) == []  # a line for a module that is gone
