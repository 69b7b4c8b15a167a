"""The query parameters that pages and streams take, and their checks.

A bad value gets HTTP 400 with one line that names the parameter and says
what it must be, for example ``count must be an integer from 0 to 1000000,
got 'abc'``.
"""

import re
from dataclasses import dataclass

from flask import abort, current_app, g, request


@dataclass(frozen=True)
class Spec:
    """What a numeric parameter may be: its type, its text, its bounds."""

    kind: type
    pattern: str
    low: float
    high: float
    what: str

    def describe(self, name):
        # bounds written out in full: 1000000, not 1e+06; 60, not 60.0
        low, high = (f"{bound:.15g}" for bound in (self.low, self.high))
        return f"{name} must be {self.what} from {low} to {high}"


INTEGER = r"[0-9]+"
SECONDS = r"[0-9]+(\.[0-9]*)?|\.[0-9]+"

SPECS = {
    "count": Spec(int, INTEGER, 0, 1_000_000, "an integer"),
    "interval": Spec(float, SECONDS, 0.0, 60.0, "a number of seconds"),
    # how many messages a page's log keeps; #count counts them all
    "keep": Spec(int, INTEGER, 1, 1_000_000, "an integer"),
}
# the parameters that make up a stream's settings
STREAM = ("count", "interval")
KEEP = 1000

# longer than any valid value; also keeps int() off text of thousands of digits
MAX_LENGTH = 40


def shown(raw):
    """``raw`` as an error message quotes it: at most 40 characters."""
    return repr(raw if len(raw) <= MAX_LENGTH else raw[:MAX_LENGTH] + "...")


def check(name, raw, spec=None):
    """``raw`` as the parameter ``name``, or ValueError saying what it must be."""
    spec = spec or SPECS[name]
    text = raw.strip()
    if len(text) <= MAX_LENGTH and re.fullmatch(spec.pattern, text):
        value = spec.kind(text)
        if spec.low <= value <= spec.high:
            return value
    raise ValueError(f"{spec.describe(name)}, got {shown(raw)}")


def number(name, default, spec=None):
    """The query parameter ``name`` checked against its spec, else ``default``."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return check(name, raw, spec)
    except ValueError as error:
        abort(400, str(error))


def flag(name, default=False):
    """A 0-or-1 query parameter as a bool; ``default`` when it is left out."""
    value = request.args.get(name)
    if value is None:
        return default
    if value not in ("0", "1"):
        abort(400, f"{name} must be 0 or 1, got {shown(value)}")
    return value == "1"


def accept_sse():
    """``accept_sse``: whether a page's fetch() or XMLHttpRequest asks for
    ``Accept: text/event-stream``. jupyter-server-proxy (4.4 and later) passes
    a response on as it comes only for that exact header, so it is on by
    default when the app is published under a path, behind a proxy."""
    return flag("accept_sse", default=bool(request.script_root))


def stream_params():
    """``count`` and ``interval`` from the query string, else the app's defaults.

    Parsed once per request.
    """
    if "stream_params" not in g:
        g.stream_params = {
            name: number(name, current_app.config[f"STREAM_{name.upper()}"])
            for name in STREAM
        }
    return g.stream_params


def page_options():
    """What every page takes: the stream's settings, ``keep`` and ``embed``."""
    if "page_options" not in g:
        g.page_options = {
            **stream_params(),
            "keep": number("keep", KEEP),
            "embed": flag("embed"),
        }
    return g.page_options


def after(count):
    """The id in ``?after=``: the last message a reader already has, else -1.

    A WebSocket has no ``Last-Event-ID``: a page that reconnects sends its
    place in the stream as this resume token.
    """
    raw = request.args.get("after")
    if raw is None:
        return -1
    return message_id("after", raw, count)


def message_id(name, raw, count):
    """``raw`` as one of the ids 0 to count - 1 of a stream, else a 400."""
    text = raw.strip()
    if len(text) <= MAX_LENGTH and re.fullmatch(INTEGER, text) and int(text) < count:
        return int(text)
    abort(
        400,
        f"{name} must be a message id from 0 to {count - 1} "
        f"for count={count}, got {shown(raw)}",
    )


def last_event_id(count):
    """The id in ``Last-Event-ID``, or -1 for a first connection.

    Ids number the messages from 0. An id that is not one of this stream's
    gets a 400 rather than a silent restart, which would show the reader
    every message again.
    """
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return -1
    return message_id("Last-Event-ID", raw, count)
