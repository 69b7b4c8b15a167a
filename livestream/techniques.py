"""The techniques: one table that the views, the gallery, the benchmark and
the browser suite all read."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Technique:
    """One way to show a stream in the browser."""

    name: str
    page: str  # the page's route: /<page>
    template: str
    stream: str  # the view that serves its stream
    format: str
    title: str
    how: str
    when: str
    poll: bool = False  # the classic page is /xhr?poll=1
    # the stream carries the page's markup (htmx): the server draws the log,
    # so the stream takes the page's ``keep`` too
    markup_from_server: bool = False
    # the page shows a picture that each message redraws (MJPEG): no text to
    # read back, no count, no log; the picture is the readout
    picture: bool = False

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
        """Whether a script reads the stream and fills the page's readout (all
        but the iframe and the picture). On the htmx page that script is
        htmx, not ours."""
        return self.page != "iframe" and not self.picture


TECHNIQUES = (
    Technique(
        name="xhr-polled",
        page="xhr",
        poll=True,
        template="xhr_polled.html",
        stream="stream_text",
        format="plain lines",
        title="XMLHttpRequest, polled (the classic answer)",
        how="Splits the whole responseText into lines once a second.",
        when="for nothing new: it lags up to a second and redoes all its work.",
    ),
    Technique(
        name="xhr",
        page="xhr",
        template="xhr.html",
        stream="stream_ndjson",
        format="NDJSON",
        title="XMLHttpRequest",
        how="Parses the new text on each progress event.",
        when="where old browsers matter; responseText grows for the whole stream.",
    ),
    Technique(
        name="iframe",
        page="iframe",
        template="iframe.html",
        stream="stream_html",
        format="HTML",
        title="iframe",
        how="The server streams an HTML document into a frame; no script.",
        when=(
            "for a log to watch, when the page need not react to the data; "
            "not behind JupyterHub's proxy, which holds it to the end."
        ),
    ),
    Technique(
        name="fetch",
        page="fetch",
        template="fetch.html",
        stream="stream_ndjson",
        format="NDJSON",
        title="fetch() and a ReadableStream",
        how="Reads the body chunk by chunk and keeps nothing it has read.",
        when="by default, and for requests that need headers, a body or a cancel.",
    ),
    Technique(
        name="sse",
        page="sse",
        template="sse.html",
        stream="stream_sse",
        format="SSE",
        title="Server-Sent Events",
        how="EventSource: ids, reconnects on its own, resumes where it was.",
        when="for live feeds, and through any proxy that streams event streams.",
    ),
    Technique(
        name="ws",
        page="ws",
        template="ws.html",
        stream="stream_ws",
        format="WebSocket messages",
        title="WebSocket",
        how="One WebSocket message per message; no ids, no reconnect of its own.",
        when="when the page talks back too; a resume token must stand in for ids.",
    ),
    Technique(
        name="htmx",
        page="htmx",
        template="htmx.html",
        stream="stream_htmx",
        format="SSE of HTML",
        title="htmx and its SSE extension",
        how="No script of ours: htmx swaps each event's HTML into the page.",
        when=(
            "in an htmx app: the server writes the markup, so each message "
            "travels as HTML, and the page can only show what it is sent."
        ),
        markup_from_server=True,
    ),
    Technique(
        name="mjpeg",
        page="mjpeg",
        template="mjpeg.html",
        stream="stream_mjpeg",
        format="JPEG frames",
        title="MJPEG: a picture per message",
        how="No script: an <img> shows each JPEG the server draws, over the last.",
        when=(
            "to show a picture that changes (a chart, a camera) to any browser; "
            "nothing accumulates and the page cannot read the messages."
        ),
        picture=True,
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
