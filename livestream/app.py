"""The app factory: one page per technique and the streams they read."""

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
)
from werkzeug.exceptions import BadRequest

from .framing import html_text, ndjson_line, plain_line
from .sources import sqrt_demo
from .streams import guarded, stream_response

TECHNIQUES = ("xhr", "iframe")

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

bp = Blueprint("livestream", __name__)


def create_app(source=None, **config):
    """Build the app that streams ``source(count, interval)`` to every page.

    ``config`` updates Flask's config; ``STREAM_COUNT`` and ``STREAM_INTERVAL``
    are the defaults for requests that leave ``count`` or ``interval`` out.
    """
    if source is not None and not callable(source):
        raise TypeError(
            "source must be a callable source(count, interval) that returns "
            f"the messages, not {type(source).__name__}"
        )
    lower = [key for key in config if not key.isupper()]
    if lower:
        raise TypeError(
            f"config keys are upper case, like STREAM_COUNT; got {', '.join(lower)}"
        )
    app = Flask(__name__, template_folder=_templates_folder())
    app.config.from_mapping(STREAM_COUNT=500, STREAM_INTERVAL=1.0)
    app.config.update(config)
    for name in PARAMS:
        key = f"STREAM_{name.upper()}"
        try:
            app.config[key] = _check(name, str(app.config[key]))
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    app.extensions["livestream"] = {"source": source or sqrt_demo}
    app.register_blueprint(bp)
    app.register_error_handler(BadRequest, _plain_error)
    return app


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


def _check(name, raw):
    """``raw`` as the parameter ``name``, or ValueError saying what it must be."""
    kind, pattern, low, high, what = PARAMS[name]
    if re.fullmatch(pattern, raw.strip()):
        value = kind(raw)
        if low <= value <= high:
            return value
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    raise ValueError(f"{name} must be {what} from {low:g} to {high:g}, got {shown!r}")


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


def open_source():
    """Start this request's run of the app's source, guarded against hang-ups."""
    params = stream_params()
    source = current_app.extensions["livestream"]["source"]
    return guarded(source(params["count"], params["interval"]), request.environ)


@bp.get("/<any(xhr, iframe):technique>")
def page(technique):
    """The page that shows the stream with ``technique``."""
    poll = request.args.get("poll", "0")
    if poll not in ("0", "1"):
        abort(400, f"poll must be 0 or 1, got {poll[:40]!r}")
    return render_template(
        f"{technique}.html",
        technique=technique,
        techniques=TECHNIQUES,
        poll=poll == "1",
        **stream_params(),
    )


@bp.get("/style.css")
def stylesheet():
    """The stylesheet shared by the pages and the iframe's streamed document."""
    return render_template("style.css"), {"Content-Type": "text/css; charset=utf-8"}


@bp.get("/stream/text")
def stream_text():
    """The classic answer's stream: plain text, one message a line."""
    messages = open_source()
    return stream_response(map(plain_line, messages), "text/plain", messages)


@bp.get("/stream/ndjson")
def stream_ndjson():
    """Newline-delimited JSON: a message with a newline in it stays whole."""
    messages = open_source()
    return stream_response(map(ndjson_line, messages), "application/x-ndjson", messages)


@bp.get("/stream/html")
def stream_html():
    """An HTML document that grows by one escaped ``.message`` per message."""
    messages = open_source()
    # jinja escapes each message as it renders it; stream_template keeps the
    # request context for the generator, so url_for works mid-stream
    body = stream_template("stream.html", messages=map(html_text, messages))
    return stream_response(body, "text/html", messages)
