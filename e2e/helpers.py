"""What the browser tests share, and what needs Playwright: the techniques by
name, and the readout of a technique's page. What needs no browser is in
testing_support, beside the root conftest.py."""

import json
import math

from playwright.sync_api import expect

from livestream.techniques import BY_NAME, TECHNIQUES

# every technique shows the same readout; the iframe's is inside its frame
NAMES = [technique.name for technique in TECHNIQUES]
SCRIPTED = [technique.name for technique in TECHNIQUES if technique.scripted]


class Readout:
    """The parts of a technique's page that tests look at."""

    def __init__(self, page, technique):
        self.page = page
        self.technique = technique
        # a script fills the page's readout; without one (the iframe) the
        # streamed document grows inside the frame and ends with #done
        self.scripted = BY_NAME[technique].scripted
        if self.scripted:
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

    def expect_count(self, n):
        if self.scripted:
            expect(self.page.locator("#count")).to_have_text(str(n))
        expect(self.messages).to_have_count(n)

    def expect_ended(self):
        if self.scripted:
            expect(self.end).to_have_text("Done")
        else:
            expect(self.end).to_be_attached()

    def expect_open(self):
        if self.scripted:
            expect(self.end).not_to_have_text("Done")
        else:
            expect(self.end).not_to_be_attached()

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

    def texts(self):
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
