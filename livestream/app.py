"""The app factory: one page per technique and the streams they read."""

import itertools
import os
import re
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    render_template,
    request,
    stream_template,
    url_for,
)
from markupsafe import Markup
from werkzeug.exceptions import BadRequest

from . import feed
from .framing import (
    SSE_END,
    SSE_KEEPALIVE,
    Unsendable,
    framed,
    html_item,
    ndjson_line,
    plain_line,
    sse_event,
    sse_failure,
    sse_retry,
)
from .sources import run_source, sqrt_demo
from .streams import KEEPALIVE, OpenStreams, relay, stream_response

TECHNIQUES = ("xhr", "iframe", "fetch", "sse")

# how many messages a page's log keeps by default; #count counts them all
KEEP = 1000

# the gallery's cards: what each technique does, and when to reach for it
GALLERY = [
    {
        "name": "xhr-polled",
        "technique": "xhr",
        "poll": 1,
        "title": "XMLHttpRequest, polled (the classic answer)",
        "how": "Splits the whole responseText into lines once a second.",
        "when": "for nothing new: it lags up to a second and redoes all its work.",
    },
    {
        "name": "xhr",
        "technique": "xhr",
        "poll": 0,
        "title": "XMLHttpRequest",
        "how": "Parses the new text on each progress event.",
        "when": "where old browsers matter; responseText grows for the whole stream.",
    },
    {
        "name": "iframe",
        "technique": "iframe",
        "poll": 0,
        "title": "iframe",
        "how": "The server streams an HTML document into a frame; no script.",
        "when": "for a log to watch, when the page need not react to the data.",
    },
    {
        "name": "fetch",
        "technique": "fetch",
        "poll": 0,
        "title": "fetch() and a ReadableStream",
        "how": "Reads the body chunk by chunk and keeps nothing it has read.",
        "when": "by default, and for requests that need headers, a body or a cancel.",
    },
    {
        "name": "sse",
        "technique": "sse",
        "poll": 0,
        "title": "Server-Sent Events",
        "how": "EventSource: ids, reconnects on its own, resumes where it was.",
        "when": "for live feeds, and through proxies that buffer everything else.",
    },
]

# name: (kind, pattern, lowest, highest, how to say it)
PARAMS = {
    "count": (int, r"[0-9]+", 0, 1_000_000, "an integer"),
    "interval": (
        float,
        r"[0-9]+(\.[0-9]*)?|\.[0-9]+",
        0.0,
        60.0,
        "a number of seconds",
    ),
}
# a page option, checked the same way; not part of the stream's settings
KEEP_PARAM = (int, r"[0-9]+", 1, 1_000_000, "an integer")

# the stream settings create_app() adds to Flask's config
DEFAULTS = {
    "STREAM_COUNT": 500,
    "STREAM_INTERVAL": 1.0,
    # seconds without a message before an SSE stream sends a comment, so that
    # proxies and browsers don't take a quiet stream for a dead one
    "SSE_KEEPALIVE": 15.0,
    # how long a browser waits before it reconnects a dropped SSE stream
    "SSE_RETRY_MS": 1000,
    # where the live feed lives (livestream.feed); read at create_app() time
    "REDIS_URL": None,
}


bp = Blueprint("livestream", __name__)


def create_app(source=None, **config):
    """Build the app that streams ``source(count, interval)`` to every page.

    ``config`` updates Flask's config; ``STREAM_COUNT`` and ``STREAM_INTERVAL``
    are the defaults for requests that leave ``count`` or ``interval`` out,
    ``SSE_KEEPALIVE`` (seconds) and ``SSE_RETRY_MS`` tune the SSE stream.
    """
    if source is not None and not callable(source):
        raise TypeError(
            "source must be a callable source(count, interval) that returns "
            f"the messages, not {type(source).__name__}"
        )
    app = Flask(__name__, template_folder=_templates_folder())
    app.config.update(_checked_config(config))
    app.extensions["livestream"] = {
        "source": source or sqrt_demo,
        "open_streams": OpenStreams(),
    }
    app.register_blueprint(bp)
    app.register_error_handler(BadRequest, _plain_error)
    return app


def _checked_config(config):
    """The defaults updated with ``config``, or an error that says what is wrong."""
    lower = [key for key in config if not key.isupper()]
    if lower:
        raise TypeError(
            f"config keys are upper case, like STREAM_COUNT; got {', '.join(lower)}"
        )
    settings = {**DEFAULTS, **config}
    settings["REDIS_URL"] = settings["REDIS_URL"] or feed.redis_url()
    for name in PARAMS:
        key = f"STREAM_{name.upper()}"
        try:
            settings[key] = _check(name, str(settings[key]))
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    keepalive, retry = settings["SSE_KEEPALIVE"], settings["SSE_RETRY_MS"]
    if not (_is_number(keepalive) and 0 < keepalive <= 3600):
        raise ValueError(
            "SSE_KEEPALIVE must be a number of seconds above 0, at most 3600"
        )
    if not (_is_number(retry) and isinstance(retry, int) and retry >= 0):
        raise ValueError(
            "SSE_RETRY_MS must be a whole number of milliseconds, 0 or more"
        )
    return settings


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _templates_folder():
    # a wheel carries the templates inside the package; a checkout keeps them
    # at the top of the repository, beside the package
    here = Path(__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


def _plain_error(error):
    # one line of text that a person or a script can read, not an HTML page
    return (
        f"{error.description}\n",
        error.code,
        {"Content-Type": "text/plain; charset=utf-8"},
    )


def _check(name, raw, spec=None):
    """``raw`` as the parameter ``name``, or ValueError saying what it must be."""
    kind, pattern, low, high, what = spec or PARAMS[name]
    if re.fullmatch(pattern, raw.strip()):
        value = kind(raw)
        if low <= value <= high:
            return value
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    # bounds written out in full: 1000000, not 1e+06; 60, not 60.0
    low, high = (f"{bound:.15g}" for bound in (low, high))
    raise ValueError(f"{name} must be {what} from {low} to {high}, got {shown!r}")


def stream_params():
    """``count`` and ``interval`` from the query string, else the app's defaults."""
    params = {}
    for name in PARAMS:
        raw = request.args.get(name)
        if raw is None:
            params[name] = current_app.config[f"STREAM_{name.upper()}"]
            continue
        try:
            params[name] = _check(name, raw)
        except ValueError as error:
            abort(400, str(error))
    return params


def open_source(params, start=0, keepalive=None):
    """This request's run of the app's source, relayed from a thread of its own."""
    state = current_app.extensions["livestream"]
    messages = run_source(state["source"], params["count"], params["interval"], start)
    return relay(messages, request.environ, state["open_streams"], keepalive)


def last_event_id(count):
    """The id in ``Last-Event-ID``, or -1 for a first connection.

    Ids number the messages from 0. An id that is not one of this stream's
    gets a 400 rather than a silent restart, which would show the reader
    every message again.
    """
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return -1
    if re.fullmatch(r"[0-9]+", raw) and int(raw) < count:
        return int(raw)
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    abort(
        400,
        f"Last-Event-ID must be a message id from 0 to {count - 1} "
        f"for count={count}, got {shown!r}",
    )


def flag(name):
    """A 0-or-1 query parameter as a bool."""
    value = request.args.get(name, "0")
    if value not in ("0", "1"):
        abort(400, f"{name} must be 0 or 1, got {value[:40]!r}")
    return value == "1"


def keep_param():
    """How many messages a page's log keeps: ``keep``, 1 to 1,000,000."""
    raw = request.args.get("keep")
    if raw is None:
        return KEEP
    try:
        return _check("keep", raw, KEEP_PARAM)
    except ValueError as error:
        abort(400, str(error))


def render_page(template, technique, **context):
    """A page on base.html, with the options every page takes from the query."""
    params = stream_params()
    return render_template(
        template,
        technique=technique,
        techniques=TECHNIQUES,
        poll=flag("poll"),
        embed=flag("embed"),
        keep=keep_param(),
        **params,
        **context,
    )


@bp.get("/<any(xhr, iframe, fetch, sse):technique>")
def page(technique):
    """The page that shows the stream with ``technique``."""
    sse_url = url_for("livestream.stream_sse", **stream_params())
    return render_page(f"{technique}.html", technique, stream_url=sse_url)


@bp.get("/")
def gallery():
    """Every technique side by side on the same stream."""
    return render_page("gallery.html", "gallery", cards=GALLERY)


@bp.get("/status")
def status():
    """What the app is doing now, as JSON: open streams, and which process."""
    state = current_app.extensions["livestream"]
    return {"active_streams": len(state["open_streams"]), "pid": os.getpid()}


@bp.get("/feed")
def feed_page():
    """The live feed from Redis (see livestream.feed), read with EventSource."""
    # ?after=<entry id> starts from the feed's history, after that entry
    feed_url = url_for("livestream.stream_feed", after=feed_after())
    return render_page("sse.html", "feed", stream_url=feed_url)


def feed_after():
    """``?after=``: a Redis Stream entry id to start after, or None."""
    after = request.args.get("after")
    if after is not None and not feed.is_entry_id(after):
        abort(400, f"after must be a Redis Stream entry id, got {after[:40]!r}")
    return after


@bp.get("/stream/feed")
def stream_feed():
    """The live feed as Server-Sent Events; each id is the Redis entry id.

    A new reader starts with what is published next; ``Last-Event-ID`` (or
    ``?after=``) resumes after that entry.
    """
    after = request.headers.get("Last-Event-ID", "").strip() or feed_after() or "$"
    if after != "$" and not feed.is_entry_id(after):
        abort(
            400,
            "Last-Event-ID must be a Redis Stream entry id such as "
            f"1700000000000-0, got {after[:40]!r}",
        )
    state = current_app.extensions["livestream"]
    if "redis" not in state:
        state["redis"] = feed.connect(current_app.config["REDIS_URL"])
    entries = relay(
        feed.follow(state["redis"], after),
        request.environ,
        state["open_streams"],
        current_app.config["SSE_KEEPALIVE"],
    )
    retry = current_app.config["SSE_RETRY_MS"]
    outcome = Outcome(current_app.logger)

    def frames():
        following = False
        for batch in entries:
            if batch is KEEPALIVE:
                yield SSE_KEEPALIVE
                continue
            if not following:
                # the first batch comes once the feed knows where it starts:
                # from now on nothing published is missed. Say so, and which
                # process serves this stream
                following = True
                yield f": following, served by process {os.getpid()}\n\n"
            # the feed wakes now and then with nothing: None, not an entry
            found = [entry for entry in batch if entry is not None]
            yield from framed([found], lambda entry: sse_event(entry[1], entry[0]))

    def body():
        yield sse_retry(retry)
        yield from outcome.watch(frames())
        if outcome.error:
            yield sse_failure(outcome.error)

    return stream_response(body(), "text/event-stream", entries.close)


@bp.get("/style.css")
def stylesheet():
    """The stylesheet shared by the pages and the iframe's streamed document."""
    return render_template("style.css"), {"Content-Type": "text/css; charset=utf-8"}


class Outcome:
    """How a stream's source ended, for the formats that can say so in-band.

    Plain lines and NDJSON have no way to: an exception there breaks the
    connection off (the server logs it), and the page reports the break.
    """

    def __init__(self, logger):
        self.logger = logger
        self.error = None

    def watch(self, messages):
        """Yield ``messages``; if they raise, log it and keep a short account."""
        try:
            yield from messages
        except Unsendable as error:
            self.logger.exception("a message could not be sent")
            self.error = f"a message was refused: {error}"
        except Exception as error:
            self.logger.exception("the stream's source failed")
            self.error = f"the source failed: {type(error).__name__}: {error}"[:300]


@bp.get("/stream/text")
def stream_text():
    """The classic answer's stream: plain text, one message a line."""
    batches = open_source(stream_params())
    return stream_response(framed(batches, plain_line), "text/plain", batches.close)


@bp.get("/stream/ndjson")
def stream_ndjson():
    """Newline-delimited JSON: a message with a newline in it stays whole."""
    batches = open_source(stream_params())
    return stream_response(
        framed(batches, ndjson_line), "application/x-ndjson", batches.close
    )


@bp.get("/stream/html")
def stream_html():
    """An HTML document that grows by one escaped ``.message`` per message."""
    batches = open_source(stream_params())
    outcome = Outcome(current_app.logger)
    # html_item escapes each message into its list item, so the joined items
    # are markup; stream_template keeps the request context for the
    # generator, so url_for works mid-stream
    items = outcome.watch(map(Markup, framed(batches, html_item)))
    body = stream_template("stream.html", items=items, outcome=outcome)
    return stream_response(body, "text/html", batches.close)


@bp.get("/stream/sse")
def stream_sse():
    """Server-Sent Events: an id per message, keep-alives, and an end event."""
    params = stream_params()
    start = last_event_id(params["count"]) + 1
    events = open_source(params, start, current_app.config["SSE_KEEPALIVE"])
    retry = current_app.config["SSE_RETRY_MS"]
    outcome = Outcome(current_app.logger)

    def frames():
        ids = itertools.count(start)
        for batch in events:
            if batch is KEEPALIVE:
                yield SSE_KEEPALIVE
            else:
                yield from framed([batch], lambda m: sse_event(m, next(ids)))

    def body():
        yield sse_retry(retry)
        yield from outcome.watch(frames())
        # a failure is final: the page closes its EventSource rather than
        # reconnect into the same error again
        yield sse_failure(outcome.error) if outcome.error else SSE_END

    return stream_response(body(), "text/event-stream", events.close)
