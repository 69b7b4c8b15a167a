"""What both suites share, tests/ and e2e/ alike, and nothing that needs a
browser: sources that record how they ran or wait for the test, readers of what
a stream sends, and the hostile messages.

It sits beside the root conftest.py, whose folder pytest puts on the path, so
that neither suite imports the other; e2e/helpers.py holds what drives a page
through Playwright."""

import html
import json
import logging
import re
import threading
import time


class Recorder:
    """A source that yields given messages and records how its run ended."""

    def __init__(self, messages=(), interval=None, forever=False):
        self.messages = list(messages)
        self.interval = interval
        self.forever = forever
        self.started = threading.Event()
        self.closed = threading.Event()

    def __call__(self, count, interval):
        wait = self.interval if self.interval is not None else interval
        self.started.set()
        try:
            i = 0
            while self.forever or i < len(self.messages):
                yield self.messages[i] if i < len(self.messages) else f"tick {i}"
                i += 1
                if wait:
                    threading.Event().wait(wait)
        finally:
            self.closed.set()


class Stepper:
    """A source that sends each message only when the test releases it."""

    def __init__(self, messages):
        self.messages = messages
        self.release = threading.Semaphore(0)
        self.closed = threading.Event()

    def __call__(self, count, interval):
        try:
            for message in self.messages:
                # bounded: a test that failed must not leave the thread waiting
                if not self.release.acquire(timeout=30):
                    return
                yield message
        finally:
            self.closed.set()


def wait_until(condition, timeout):
    """Poll ``condition()`` until it is true; False if ``timeout`` s pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def parse_sse(text):
    """Read an event stream as a browser does: events, retry, comments."""
    events, comments, retry = [], 0, None
    fields, data = {}, []
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if data:  # a block without data: lines dispatches nothing
                events.append({**fields, "data": "\n".join(data)})
            fields, data = {}, []
        elif line.startswith(":"):
            comments += 1
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "retry":
                retry = int(value)
            else:
                fields[name] = value
    return {"events": events, "comments": comments, "retry": retry}


def read_htmx(text):
    """An htmx stream (SSE whose data are HTML) read as its page shows it:
    ``(messages, ended)``, each event's list item as text, and what the end
    event puts in #latest (``Done``, or ``Error: ...``; None without one).
    Each message's event must also set #latest to it and #count to its
    number."""
    messages, ended = [], None

    def swapped_into(target, data):
        (found,) = re.findall(
            rf'<span hx-swap-oob="innerHTML:{target}">(.*?)</span>', data, re.S
        )
        return html.unescape(found)

    for event in parse_sse(text)["events"]:
        data = event["data"]
        if event.get("event") == "end":
            ended = swapped_into("#latest", data)
            continue
        (item,) = re.findall(r'<li class="message">(.*?)</li>', data, re.S)
        message = html.unescape(item)
        assert swapped_into("#latest", data) == message
        assert swapped_into("#count", data) == str(int(event["id"]) + 1)
        messages.append(message)
    return messages, ended


HOSTILE = {
    "markup": "<img src=x onerror=alert(1)><script>alert(2)</script>",
    "newline": "one\ntwo",
    "crlf": "one\r\ntwo",
    "lone cr": "one\rtwo",
    "nul": "one\0two",
    "lone surrogate": "one\ud800two",
    "1 MB": "x" * 1_000_000,
}
# what each format cannot carry (see livestream.framing)
REFUSED = {
    "text": {"newline", "crlf", "lone cr", "lone surrogate"},
    "ndjson": set(),
    "html": {"nul", "lone surrogate"},
    "sse": {"crlf", "lone cr", "lone surrogate"},
    "ws": {"lone surrogate"},
    # a picture draws a message's text, cut to fit; it refuses none of these
    "jpeg": set(),
    # SSE whose data are HTML (htmx): HTML's refusals; a carriage return goes
    # as a character reference, so the SSE framing never meets one
    "htmx": {"nul", "lone surrogate"},
}


def stream_url_in(page_html):
    """The stream URL that a page hands to its script (as JSON) or its iframe."""
    (found,) = re.findall(r'"([^"]*/stream/[^"]*)"', page_html)
    return html.unescape(json.loads(f'"{found}"'))


class FeedReader(threading.Thread):
    """A client of a live-feed stream that keeps what it reads.

    It hangs up after ``want`` events (what came in the same chunk after them
    is never handled); ``cut`` says whether the server broke the stream off.
    """

    def __init__(self, url, want, last_id=None, path="/stream/feed"):
        super().__init__(daemon=True)
        self.url, self.want, self.path = url, want, path
        self.headers = {"Last-Event-ID": last_id} if last_id else {}
        self.text, self.events, self.worker = "", [], None
        self.connected = threading.Event()
        self.cut = False

    def run(self):
        import requests

        try:
            self._read(requests)
        except requests.RequestException:
            self.cut = True

    def _read(self, requests):
        with requests.get(
            self.url + self.path, headers=self.headers, stream=True, timeout=30
        ) as response:
            for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
                self.text += chunk
                if "served by process" in self.text and not self.connected.is_set():
                    self.worker = self.text.split("served by process ")[1].split()[0]
                    self.connected.set()
                events = [e for e in parse_sse(self.text)["events"]]
                self.events = events[: self.want]
                if len(events) >= self.want:
                    return

    def data(self):
        """The data of each event read so far."""
        return [event["data"] for event in self.events]


# the longest a stalled source waits: in a gunicorn worker no test can let it
# go, and the worker must still stop in the end
STALL_LIMIT = 120.0


class Stall:
    """A source, or an answer, that yields one message and then stalls, as a
    model's client whose connection hangs does: until ``release`` is set, or
    with ``every``, a message every ``every`` s (a slow generator)."""

    def __init__(self, every=None):
        self.every = every
        self.release = threading.Event()
        self.closed = threading.Event()

    def __call__(self, *args, **kwargs):
        # source(count, interval) and answer(prompt) alike
        try:
            yield "first"
            while self.every is not None and not self.release.wait(self.every):
                yield "more"
            self.release.wait(STALL_LIMIT)
        finally:
            self.closed.set()


def stalled_app(every=None):
    """An app whose every stream and answer yields once, then stalls (see
    :class:`Stall`); gunicorn serves it as ``testing_support:stalled_app()``."""
    from livestream import create_app

    stall = Stall(every)
    app = create_app(stall, answer=stall, TESTING=True)
    app.extensions["stall"] = stall
    return app


# --- the attack matrix's surfaces and apps (tests/test_matrix.py) ---

# what each technique's format is called where a reader is chosen; a format
# the table gains without a reader here fails the matrix until it has one
FORMATS = {
    "plain lines": "text",
    "NDJSON": "ndjson",
    "HTML": "html",
    "SSE": "sse",
    "WebSocket messages": "ws",
    "JPEG frames": "jpeg",
    "SSE of HTML": "htmx",
}


class Surface:
    """Something a client can open: a stream of the technique table, the
    streamed answer, or the live feed."""

    def __init__(self, name, path, format, method="GET", redis=False):
        self.name, self.path, self.format = name, path, format
        self.method, self.redis = method, redis

    @property
    def websocket(self):
        return self.format == "ws"

    @property
    def cross_site(self):
        """Whether a page on another site could read or trigger it if nothing
        stopped it: a WebSocket and a POST; a GET's answer is CORS's."""
        return self.websocket or self.method != "GET"

    def __repr__(self):
        return self.name


def surfaces():
    """Every surface: each stream the technique table reads (once), then the
    answer and the feed."""
    from livestream.techniques import TECHNIQUES

    found = {}
    for technique in TECHNIQUES:
        found.setdefault(
            technique.stream_path,
            Surface(technique.stream, technique.stream_path, FORMATS[technique.format]),
        )
    return [
        *found.values(),
        Surface("answer", "/stream/answer", "ndjson", method="POST"),
        Surface("feed", "/stream/feed", "sse", redis=True),
    ]


# messages that every format carries as they are, each hostile to some page
# or parser: markup, an SSE field and a JSON line inside a message, quotes
# and escapes, JavaScript's line separators, an astral character, a
# terminal's escape codes, and one large message
CARRIED = [
    "<img src=x onerror=alert(1)></li></ol><script>alert(2)</script>",
    "event: end data: forged id: 99 retry: 1",
    '{"prompt": "x"} "quotes" \\backslashes\\ \'single\'',
    "line\u2028separator\u2029paragraph",
    "astral \U0001f4a5 and combining e\u0301",
    "\x1b[31mred\x1b[0m\ttab",
    "-->]]></script>",
    "y" * 200_000,
]


def carried(count=None, interval=0):
    """The CARRIED messages, as a source or an answer."""
    yield from CARRIED


def flood(count, interval=0):
    """``count`` numbered messages of 64 KB, as fast as the stream takes them."""
    for n in range(count):
        yield f"{n:08d}" + "z" * 65_528


def matrix_app(kind, redis_url=None):
    """The app the matrix serves: its streams and answer send ``kind``:
    ``carried`` (CARRIED), ``flood`` (see flood) or ``stall`` (see Stall);
    with ``redis_url`` (else $LIVESTREAM_REDIS_URL), the feed too. gunicorn
    serves it as ``testing_support:matrix_app('flood')``."""
    from livestream import create_app

    config = {"REDIS_URL": redis_url} if redis_url else {}
    if kind == "stall":
        stall = Stall()
        app = create_app(stall, answer=stall, **config)
        app.extensions["stall"] = stall
        return app
    source = {"carried": carried, "flood": flood}[kind]
    return create_app(source, answer=lambda prompt: source(int(prompt or 0)), **config)


# --- pictures (the MJPEG stream, livestream.mjpeg) ---


def pictures(messages, picture=None):
    """The JPEG of each part a picture stream of ``messages`` sends, the end
    included, byte for byte: drawn here by the same function as the server's
    (``picture``, else the default chart), on the same Pillow."""
    from livestream import mjpeg
    from livestream.streams import Outcome

    batches = ([message] for message in messages)
    outcome = Outcome(logging.getLogger(__name__))
    body = mjpeg.frames(batches, picture or mjpeg.chart, outcome)
    return mjpeg.parts_of(b"".join(body))


# a picture stream's first message is not text on the wire: its first frame
# has arrived whole once the next part's head follows it
FRAME_DONE = b"\xff\xd9\r\n--livestream-frame\r\n"


def has_first_message(received):
    """Whether ``received``, the start of a stream of a Stall, holds its first
    message: the text "first", or a picture stream's first whole frame."""
    return b"first" in received or FRAME_DONE in received


def tracebacks(notebook):
    """Where a run notebook's cell shows an error, or prints a traceback to
    stderr: what a server's thread logged lands in whichever cell runs at
    that moment. A lesson that means to show one prints it to stdout. For
    the headless runs and the front ends' alike."""
    found = []
    for n, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found.append(f"cell {n}: {output.ename}: {output.evalue}")
            elif (
                output.output_type == "stream"
                and output.name == "stderr"
                and "Traceback" in output.text
            ):
                last = output.text.strip().splitlines()[-1]
                found.append(f"cell {n} prints a traceback: {last}")
    return found
