"""The techniques: one table that the views, the gallery, the benchmark and
the browser suite all read."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Technique:
    """One way to show a stream in the browser."""

    name: str
    page: str  # the page's route: /<page>
    poll: bool  # the classic page is /xhr?poll=1
    template: str
    stream: str  # the view that serves its stream
    format: str
    title: str
    how: str
    when: str

    @property
    def path(self):
        """The page's path, with the query that picks it."""
        return f"/{self.page}" + ("?poll=1" if self.poll else "")

    @property
    def stream_path(self):
        return "/" + self.stream.replace("_", "/")

    @property
    def websocket(self):
        """Whether the stream is a WebSocket rather than an HTTP response."""
        return self.stream == "stream_ws"

    @property
    def scripted(self):
        """Whether a script reads the stream (all but the iframe)."""
        return self.page != "iframe"


TECHNIQUES = (
    Technique(
        "xhr-polled",
        "xhr",
        True,
        "xhr_polled.html",
        "stream_text",
        "plain lines",
        "XMLHttpRequest, polled (the classic answer)",
        "Splits the whole responseText into lines once a second.",
        "for nothing new: it lags up to a second and redoes all its work.",
    ),
    Technique(
        "xhr",
        "xhr",
        False,
        "xhr.html",
        "stream_ndjson",
        "NDJSON",
        "XMLHttpRequest",
        "Parses the new text on each progress event.",
        "where old browsers matter; responseText grows for the whole stream.",
    ),
    Technique(
        "iframe",
        "iframe",
        False,
        "iframe.html",
        "stream_html",
        "HTML",
        "iframe",
        "The server streams an HTML document into a frame; no script.",
        "for a log to watch, when the page need not react to the data; "
        "not behind JupyterHub's proxy, which holds it to the end.",
    ),
    Technique(
        "fetch",
        "fetch",
        False,
        "fetch.html",
        "stream_ndjson",
        "NDJSON",
        "fetch() and a ReadableStream",
        "Reads the body chunk by chunk and keeps nothing it has read.",
        "by default, and for requests that need headers, a body or a cancel.",
    ),
    Technique(
        "sse",
        "sse",
        False,
        "sse.html",
        "stream_sse",
        "SSE",
        "Server-Sent Events",
        "EventSource: ids, reconnects on its own, resumes where it was.",
        "for live feeds, and through any proxy that streams event streams.",
    ),
    Technique(
        "ws",
        "ws",
        False,
        "ws.html",
        "stream_ws",
        "WebSocket messages",
        "WebSocket (flask-sock)",
        "One WebSocket message per message; no ids, no reconnect of its own.",
        "when the page talks back too; a resume token must stand in for ids.",
    ),
)

BY_NAME = {technique.name: technique for technique in TECHNIQUES}
PAGES = sorted({technique.page for technique in TECHNIQUES})


def find(page, poll=False):
    """The technique whose page is ``/<page>`` (``poll``: its classic version)."""
    for technique in TECHNIQUES:
        if technique.page == page and technique.poll == poll:
            return technique
    return None
