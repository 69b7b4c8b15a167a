"""What display() shows, drawn by Chromium at a notebook cell's width."""

from playwright.sync_api import expect

# a notebook's output area in JupyterLab at 1280 px is about this wide
CELL_WIDTH = 900


def notebook_page(html):
    """A WSGI app that serves ``html`` as a notebook's page: on another local
    port, like JupyterLab, whose pages the streams' pages let frame them."""

    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]

    return wsgi


def test_side_by_side_pages_share_the_width_without_clipping(page, live):
    server = live()
    pages = server.display(
        "/xhr?poll=1&count=3&interval=0", "/xhr?count=3&interval=0", "/iframe?count=3"
    )
    page.set_viewport_size({"width": CELL_WIDTH, "height": 600})
    notebook = live(app=notebook_page(pages._repr_html_()))
    page.goto(notebook.url.replace("127.0.0.1", "localhost"), wait_until="commit")
    frames = page.locator("iframe")
    expect(frames).to_have_count(3)
    widths = [frames.nth(k).bounding_box()["width"] for k in range(3)]
    assert max(widths) - min(widths) < 2
    assert sum(widths) <= CELL_WIDTH
    for k in range(3):
        frame = page.frame_locator("iframe").nth(k)
        expect(frame.locator("nav")).to_be_hidden()
        title = frame.locator("h1")
        expect(title).to_be_visible()
        # a small title, wrapped rather than cut off in a third of the width
        assert title.evaluate("h => parseFloat(getComputedStyle(h).fontSize)") <= 17
        assert title.evaluate("h => h.scrollWidth <= h.clientWidth")
        # the introduction gives way to the readout
        intro = frame.locator("header > :not(h1)")
        assert intro.count() > 0
        assert intro.evaluate_all("parts => parts.every(p => !p.checkVisibility())")
    for k in range(2):
        frame = page.frame_locator("iframe").nth(k)
        expect(frame.locator("#latest")).to_have_text("Done")
        expect(frame.locator("#latest")).to_be_in_viewport()
    inner = page.frame_locator("iframe").nth(2).frame_locator("#stream")
    expect(inner.locator("#done")).to_be_attached()
