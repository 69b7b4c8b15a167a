"""Time what a page shows in headless Chromium: when each message appears,
measured against when the server yielded it.
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from ..app import create_app
from ..server import serve
from ..sources import run_source, sqrt_demo
from .chromium import launch_options
from .report import dataframe, milliseconds, percentile

# every page records when each .message element appears, in every frame, on
# the same clock as Python's time.time() (milliseconds since the epoch).
# Playwright runs this in each new document, but a streamed iframe's
# document replaces the frame's first, empty one in the same window, and now
# and then the script does not run again for it (one run in ten on a busy
# machine): the observer stays on the old document and sees nothing. So a
# recorder belongs to a document, and the top page also looks at its frames
# on every animation frame and gives any document that lacks one its own,
# counting the messages already there as arriving then (late, never lost)
RECORD_ARRIVALS = """
(() => {
  function record(win, late) {
    if (win.__recorded === win.document) return;
    win.__recorded = win.document;
    const arrivals = (win.__arrivals = []);
    win.__late = 0;
    const now = () => performance.timeOrigin + performance.now();
    if (late)
      for (const node of win.document.getElementsByClassName("message")) {
        arrivals.push(now());
        win.__late += 1;
      }
    new win.MutationObserver((records) => {
      const seen = now();
      for (const record of records)
        for (const node of record.addedNodes)
          if (node.classList && node.classList.contains("message"))
            arrivals.push(seen);
    }).observe(win.document, { childList: true, subtree: true });
  }
  record(window, false);
  if (window.top !== window) return;
  function watchFrames() {
    for (const frame of document.querySelectorAll("iframe")) {
      const win = frame.contentWindow;
      // a frame still on its first, empty document has no messages yet
      if (win && win.document && win.location.href !== "about:blank")
        record(win, true);
    }
    requestAnimationFrame(watchFrames);
  }
  requestAnimationFrame(watchFrames);
})();
"""

# every .message element shown in a frame, and how many the recorder saw
RECORDED = """() => ({
  shown: document.getElementsByClassName("message").length,
  arrivals: window.__arrivals || [],
  late: window.__late || 0,
})"""

STREAM_ENDED = """() => {
  const frame = document.querySelector("iframe");
  const doc = frame ? frame.contentDocument : document;
  const latest = doc && doc.getElementById("latest");
  return Boolean(doc && (doc.getElementById("done") ||
    (latest && !latest.textContent.startsWith("waiting") &&
     /^(Done|Error)/.test(latest.textContent))));
}"""


class YieldClock:
    """Wrap a source so that the server records when it yields each message."""

    def __init__(self, source):
        self.source = source
        self.times = []

    def __call__(self, count, interval, start=0):
        self.times = times = []
        for message in run_source(self.source, count, interval, start):
            times.append(time.time())
            yield message


def in_browser(task, *args):
    """Run ``task(page, *args)`` with a fresh page in headless Chromium; its result.

    Playwright's sync API refuses to run on a thread with an asyncio loop,
    which is every notebook's main thread: the task gets a thread of its own.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_in_browser, task, *args).result()


def _in_browser(task, *args):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        try:
            return task(browser.new_page(), *args)
        finally:
            browser.close()


def arrival_times(url, timeout=60.0):
    """Open ``url`` in headless Chromium; return when each message appeared.

    Waits until the page shows the end of the stream. Times are
    ``time.time()`` seconds.
    """
    return in_browser(page_arrival_times, url, timeout)


def page_arrival_times(page, url, timeout=60.0):
    """:func:`arrival_times` in an open Playwright ``page``."""
    page.add_init_script(RECORD_ARRIVALS)
    # "load" never fires while a stream is open: wait for the response
    page.goto(url, wait_until="commit")
    page.wait_for_function(STREAM_ENDED, timeout=timeout * 1000)
    arrivals = []
    for frame in page.frames:
        recorded = frame.evaluate(RECORDED)
        # a page that keeps a bounded log shows fewer than it received, never
        # more: more shown than recorded means the recorder missed some
        if recorded["shown"] > len(recorded["arrivals"]):
            raise RuntimeError(
                f"{frame.url} shows {recorded['shown']} messages but only "
                f"{len(recorded['arrivals'])} arrivals were recorded"
            )
        arrivals += recorded["arrivals"]
    return sorted(ms / 1000 for ms in arrivals)


def latency_summary(yields, arrivals):
    """Seconds from each yield to its message on the page: p50, p99, max, lost.

    The k-th message to appear is the k-th one yielded; a message that never
    appeared counts as lost, not as a latency.
    """
    latencies = [seen - sent for sent, seen in zip(yields, arrivals, strict=False)]
    if not latencies:
        return {"messages": len(yields), "lost": len(yields)}
    ordered = sorted(latencies)
    return {
        "messages": len(yields),
        "lost": len(yields) - len(latencies),
        "first": latencies[0],
        "p50": statistics.median(ordered),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


def served_url(server, path, **params):
    """Where ``server`` serves ``path``, with ``params`` added to its query."""
    sep = "&" if "?" in path else "?"
    return server.url + path + sep + "&".join(f"{k}={v}" for k, v in params.items())


def measure(path, source=None, count=10, interval=0.2, timeout=60.0):
    """Serve ``source`` and time the page at ``path`` in Chromium.

    Returns the figures of :func:`latency_summary`, in seconds.
    """
    clock = YieldClock(source or sqrt_demo)
    with serve(create_app(clock)) as server:
        url = served_url(server, path, count=count, interval=interval)
        arrivals = arrival_times(url, timeout=timeout)
    return latency_summary(clock.times, arrivals)


def compare(paths, source=None, count=10, interval=0.2, progress=True):
    """Time each page on the same stream: a row of figures per path.

    ``progress`` shows a ``tqdm.auto`` bar, a step a page.
    """
    return [
        {"page": path, **measure(path, source, count, interval)}
        for path in tqdm(paths, unit="page", disable=not progress)
    ]


def table(rows):
    """Rows from :func:`compare` as a DataFrame, a row per page, times in
    milliseconds."""
    millis = milliseconds(0)
    return dataframe(
        rows,
        [
            ("page", "page", "{}"),
            ("messages", "messages", "{}"),
            ("lost", "lost", "{}"),
            ("first", "first ms", millis),
            ("p50", "p50 ms", millis),
            ("p99", "p99 ms", millis),
            ("max", "max ms", millis),
        ],
    )
