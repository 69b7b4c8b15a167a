"""What the browser tests share, and what needs Playwright: the techniques by
name, and the readout of a technique's page. What needs no browser is in
testing_support, beside the root conftest.py."""

import base64
import json
import math

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from livestream import create_app, mjpeg, serve
from livestream.techniques import BY_NAME, TECHNIQUES

# every technique shows the same readout; the iframe's is inside its frame
NAMES = [technique.name for technique in TECHNIQUES]
SCRIPTED = [technique.name for technique in TECHNIQUES if technique.scripted]
# the pages whose readout is a picture (MJPEG): no text to read back
PICTURES = [technique.name for technique in TECHNIQUES if technique.picture]


class Readout:
    """The parts of a technique's page that tests look at."""

    def __init__(self, page, technique):
        self.page = page
        self.technique = technique
        # a script fills the page's readout; without one (the iframe) the
        # streamed document grows inside the frame and ends with #done
        self.scripted = BY_NAME[technique].scripted
        # a picture page has no text at all: the <img>'s frame is its readout
        self.picture = Picture(page) if BY_NAME[technique].picture else None
        if self.picture:
            self.messages = self.end = None
        elif self.scripted:
            self.messages = page.locator("#output .message")
            self.end = page.locator("#latest")
        else:
            frame = page.frame_locator("#stream")
            self.messages = frame.locator(".message")
            self.end = frame.locator("#done")

    def open(self, server, query=""):
        path = BY_NAME[self.technique].path
        sep = "&" if "?" in path else "?"
        # "load" never fires while a stream is open: wait for the response only
        self.page.goto(f"{server.url}{path}{sep}{query}", wait_until="commit")

    def expect_started(self):
        """The page shows its first message (a picture page: its first frame)."""
        if self.picture:
            self.picture.expect_a_frame()
        else:
            expect(self.messages.first).to_be_attached()

    def expect_count(self, n):
        self._not_a_picture("a count")
        if self.scripted:
            expect(self.page.locator("#count")).to_have_text(str(n))
        expect(self.messages).to_have_count(n)

    def expect_ended(self):
        if self.picture:
            self.picture.expect_band(mjpeg.DONE_COLOUR)
        elif self.scripted:
            expect(self.end).to_have_text("Done")
        else:
            expect(self.end).to_be_attached()

    def expect_open(self):
        if self.picture:
            self.picture.expect_band(mjpeg.DONE_COLOUR, shown=False)
        elif self.scripted:
            expect(self.end).not_to_have_text("Done")
        else:
            expect(self.end).not_to_be_attached()

    def _not_a_picture(self, what):
        if self.picture:
            raise AssertionError(
                f"{self.technique} shows a picture: it has no {what} to read; "
                "compare its frame with Picture.expect_frame()"
            )

    def stop(self):
        self.page.get_by_role("button", name="Stop").click()
        expect(self.end).to_have_text("Stopped")

    def expect_climbing_count(self, server):
        """Open the demo stream, 30 messages 0.1 s apart: the page must show at
        least five different counts, each higher than the last, before the end,
        then every message in order."""
        self.open(server, "count=30&interval=0.1")
        seen = []
        for _ in range(5):
            state = self.page.wait_for_function(
                f"""() => {{
                  const s = ({self.STATE})();
                  return s.ended || s.count > {seen[-1] if seen else 0} ? s : null;
                }}"""
            ).json_value()
            assert not state["ended"], f"ended after only these counts: {seen}"
            seen.append(state["count"])
        assert seen == sorted(set(seen))
        self.expect_ended()
        self.expect_count(30)
        assert self.texts() == [json.dumps(math.sqrt(i)) for i in range(30)]

    def timeline(self):
        """The page's record of arrivals (static/timeline.js), read from
        #timeline's data attributes as numbers: count, first, spread (ms;
        absent before the first message), reconnects, gap (ms), repeated."""
        data = self.page.locator("#timeline").evaluate("(t) => ({...t.dataset})")
        return {name: int(value) for name, value in data.items() if name != "watch"}

    def newest(self):
        """The newest message in the log: the last one the page appended."""
        self._not_a_picture("log")
        return self.messages.last

    def texts(self):
        self._not_a_picture("text")
        # textContent keeps the message exactly, newlines included
        return self.messages.evaluate_all("items => items.map(i => i.textContent)")

    # a JS expression for page.wait_for_function: the count shown now, and
    # whether the page shows the stream has ended
    STATE = """() => {
      const frame = document.querySelector("#stream");
      if (frame) {
        const doc = frame.contentDocument;
        return {count: doc ? doc.querySelectorAll(".message").length : 0,
                ended: Boolean(doc && doc.getElementById("done"))};
      }
      // the page may still be parsing: no readout yet is a count of 0
      const count = document.getElementById("count");
      const latest = document.getElementById("latest");
      return {count: count ? Number(count.textContent) : 0,
              ended: Boolean(latest && latest.textContent === "Done")};
    }"""


# reading the picture page's <img> in the page: drawn on a canvas (the same
# origin, so the canvas may be read), the frame the browser shows now
PIXELS = """
  const pixels = (img) => {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(img, 0, 0);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const img = document.getElementById("stream");
  // no frame yet: the image has no size until its first part is decoded
  const shown = img && img.naturalWidth ? pixels(img) : null;
  const width = img ? img.naturalWidth : 0, height = img ? img.naturalHeight : 0;
"""

# whether the band across the picture's foot is ``colour``: a few points in
# its lowest rows, under any text it holds, within ``most`` of each channel
BAND = """
  const inBand = (colour, most) => Boolean(shown) &&
    [0.05, 0.5, 0.95].every((across) => [2, 4].every((up) => {
      const at = ((height - up) * width + Math.floor(width * across)) * 4;
      return [0, 1, 2].every((c) => Math.abs(shown[at + c] - colour[c]) <= most);
    }));
"""
# JPEG blurs the band's edges and text a little
BAND_TOLERANCE = 40


def read_across_a_restart(page, technique, query=""):
    """``technique``'s readout of 30 messages, its server stopped once 5 are
    in and served again on the same port (the same app): what an
    EventSource's reconnect with Last-Event-ID makes of it. ``query``: more
    of the page's query (the WebSocket page's resume=0)."""
    app = create_app(TESTING=True, SSE_RETRY_MS=200)
    server = serve(app)
    readout = Readout(page, technique)
    try:
        readout.open(server, "count=30&interval=0.05" + (f"&{query}" if query else ""))
        page.wait_for_function(
            "() => Number(document.getElementById('count').textContent) >= 5"
        )
        server.stop()
        server = serve(app, port=server.port)
        readout.expect_ended()
    finally:
        server.stop()
    return readout


class Picture:
    """The <img id="stream"> of a picture page (or of a frame that holds one),
    read by its pixels: the browser gives no event per frame and the page
    has no text, so a test compares what it shows with a frame drawn here."""

    def __init__(self, page):
        self.page = page  # a Playwright Page or Frame

    def expect_a_frame(self):
        """The image shows a frame, any frame."""
        self.page.wait_for_function(f"() => {{ {PIXELS} return width > 0; }}")

    def expect_frame(self, jpeg, timeout=5_000):
        """The image shows exactly ``jpeg``: both are decoded by the browser,
        so the same bytes are the same pixels."""
        url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        self.page.evaluate(
            f"""async (url) => {{
              const reference = new Image();
              reference.src = url;
              await reference.decode();
              {PIXELS}
              window.__reference = pixels(reference);
            }}""",
            url,
        )
        same = f"""() => {{
          {PIXELS}
          const reference = window.__reference;
          if (!shown || shown.length !== reference.length) return false;
          return shown.every((value, k) => value === reference[k]);
        }}"""
        try:
            self.page.wait_for_function(same, timeout=timeout)
        except PlaywrightTimeoutError:
            differ = self.page.evaluate(
                f"""() => {{
                  {PIXELS}
                  const reference = window.__reference;
                  if (!shown) return "no frame at all";
                  let count = 0;
                  for (let k = 0; k < shown.length; k++)
                    if (shown[k] !== reference[k]) count++;
                  return `${{width}}x${{height}}, ${{count}} channel values differ`;
                }}"""
            )
            raise AssertionError(
                f"the image is not the expected frame: {differ}"
            ) from None

    def expect_band(self, colour, shown=True):
        """The image ends with a band of ``colour`` (Done's, or an error's);
        with ``shown=False``, it shows a frame without one."""
        wanted = "inBand(colour, most)" if shown else "shown && !inBand(colour, most)"
        self.page.wait_for_function(
            f"([colour, most]) => {{ {PIXELS} {BAND} return {wanted}; }}",
            arg=[list(colour), BAND_TOLERANCE],
            timeout=5_000,
        )

    def next_change(self, previous=None, polling="raf"):
        """Wait for a frame other than ``previous``: ``{"hash", "ended"}`` of
        the frame shown now, ended if it is the Done frame. ``polling`` (ms)
        for a page out of view, which draws no animation frames."""
        return self.page.wait_for_function(
            f"""([previous, colour, most]) => {{
              {PIXELS} {BAND}
              if (!shown) return null;
              let hash = 2166136261;  // FNV-1a over every channel
              for (let k = 0; k < shown.length; k++)
                hash = Math.imul(hash ^ shown[k], 16777619);
              hash >>>= 0;
              return hash === previous ? null
                : {{ hash, ended: inBand(colour, most) }};
            }}""",
            arg=[previous, list(mjpeg.DONE_COLOUR), BAND_TOLERANCE],
            polling=polling,
            timeout=5_000,
        ).json_value()
