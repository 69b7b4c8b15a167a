"""The pages share one layout and one reader of streams, so they cannot drift
apart: base.html holds the page, static/lines.js reads every stream."""

import re

from livestream import create_app
from livestream.app import STATIC, TEMPLATES
from livestream.pitfalls import create_pitfalls_app
from livestream.techniques import TECHNIQUES

# what reading a stream by hand looks like in a page's script
READING = ("TextDecoder", "getReader", "responseText")
# not a page: the document the iframe technique streams, one item at a time
STREAMED = {"stream.html"}


def test_no_template_reads_a_stream_itself():
    found = {
        path.name: word
        for path in TEMPLATES.glob("*.html")
        for word in READING
        if word in path.read_text()
    }
    assert found == {}
    reader = (STATIC / "lines.js").read_text()
    assert all(word in reader for word in READING)


def parent(name):
    """The template that ``name`` extends, or None."""
    match = re.search(r'{%\s*extends\s+"([\w.]+)"', (TEMPLATES / name).read_text())
    return match and match.group(1)


def test_every_page_template_extends_base():
    pages = {path.name for path in TEMPLATES.glob("*.html")} - {"base.html"}
    assert pages > STREAMED
    for name in pages - STREAMED:
        # straight, or through a page that does (feed.html through sse.html)
        ancestor = parent(name)
        while ancestor not in (None, "base.html"):
            ancestor = parent(ancestor)
        assert ancestor == "base.html", name


def test_the_pitfall_pages_render_without_the_technique_pages():
    # the pitfalls app has no technique pages to link to: base.html's
    # navigation must not ask for them there
    client = create_pitfalls_app().test_client()
    for url in ("/probe?stream=nosniff", "/connections?streams=2"):
        response = client.get(url)
        assert response.status_code == 200
        assert "/static/lines.js" in response.text
        assert "<nav>" not in response.text


def test_the_script_pages_load_the_reader_and_ask_for_streams_as_told():
    client = create_app().test_client()
    for url in ("/fetch", "/xhr", "/xhr?poll=1", "/chat"):
        response = client.get(url)
        assert response.status_code == 200
        assert "/static/lines.js" in response.text
        assert "data-accept-sse" not in response.text
        asked = client.get(url + ("&" if "?" in url else "?") + "accept_sse=1")
        assert asked.status_code == 200
        assert 'data-accept-sse="1"' in asked.text


def test_every_page_keeps_a_timeline_and_the_streamed_document_no_script():
    # the timeline (static/timeline.js) is the readout's, on every page; the
    # iframe's streamed document stays without a script, watched from outside
    client = create_app(TESTING=True).test_client()
    pitfalls = create_pitfalls_app().test_client()
    pages = [(client, t.path) for t in TECHNIQUES] + [(client, "/chat")]
    pages += [(pitfalls, "/probe?stream=nosniff"), (pitfalls, "/connections?streams=2")]
    for app_client, url in pages:
        text = app_client.get(url).text
        assert text.count('id="timeline"') == 1, url
        scripts = re.findall(r'<script src="([^"]+)"', text)
        assert "/static/timeline.js" in scripts, url
        if "/static/readout.js" in scripts:
            # readout.js hands every arrival to the timeline
            assert scripts.index("/static/timeline.js") < scripts.index(
                "/static/readout.js"
            )
    streamed = client.get("/stream/html?count=3&interval=0").text
    assert "<script" not in streamed
    assert streamed.count('class="message"') == 3
