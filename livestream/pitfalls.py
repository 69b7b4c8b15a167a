"""Pitfalls that make a working stream look broken, each beside its fix.

The ``pitfalls`` blueprint serves both versions of each, for lesson 06 and
its tests: the streams are plain lines, ``tick 0``, ``tick 1``, ...
``create_pitfalls_app()`` serves it on an app of its own. What lesson 06
measures of them is in :mod:`livestream.tools.pitfall_timing`.
"""

import gzip

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.exceptions import HTTPException

from .app import STATIC, TEMPLATES, plain_error
from .params import INTEGER, Spec, number
from .sources import ticks
from .streams import STREAM_HEADERS

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# the connection-limit page reads streams from two host names
CORS = {"Access-Control-Allow-Origin": "*"}
# how many streams the connection-limit page opens at once
STREAMS = Spec(int, INTEGER, 1, 20, "an integer")
# the line streams the probe page can read, each a pitfall or its fix, and
# the view that serves each
PROBED = {
    "sniffed": "sniffed",
    "nosniff": "nosniff",
    "unmarked": "unmarked",
    "no-context": "no_context",
    "with-context": "with_context",
    "late-header": "late_header",
    "early-header": "early_header",
}
# the key of the blueprint's settings in app.extensions: the source of its
# line streams, and their count and interval when a request leaves them out
EXTENSION = "pitfalls"

bp = Blueprint("pitfalls", __name__)


def create_pitfalls_app(source=ticks, count=40, interval=0.05):
    """An app that serves the broken and the fixed view of each pitfall."""
    app = Flask(__name__, template_folder=TEMPLATES, static_folder=STATIC)
    app.register_error_handler(HTTPException, plain_error)
    app.extensions[EXTENSION] = {
        "source": source,
        "count": count,
        "interval": interval,
    }
    app.register_blueprint(bp)
    return app


def lines(headers):
    """The app's line stream, with ``headers`` and nothing else."""
    settings = current_app.extensions[EXTENSION]
    count = number("count", settings["count"])
    interval = number("interval", settings["interval"])
    return Response(
        settings["source"](count, interval), mimetype="text/plain", headers=headers
    )


@bp.get("/sniffed")
def sniffed():
    """text/plain and nothing else: Chromium sniffs the first ~1 KB."""
    return lines(CORS)


@bp.get("/nosniff")
def nosniff():
    """The fix: every header a stream needs (see livestream.streams)."""
    return lines({**STREAM_HEADERS, **CORS})


@bp.get("/unmarked")
def unmarked():
    """No X-Accel-Buffering: a proxy such as nginx buffers it."""
    return lines({**NOSNIFF, **CORS})


@bp.get("/no-context")
def no_context():
    """Reads ``request`` inside the generator: fails once streaming starts."""

    def generate():
        yield "start\n"
        yield f"name={request.args.get('name')}\n"  # outside any request now

    return Response(generate(), mimetype="text/plain", headers=NOSNIFF)


@bp.get("/with-context")
def with_context():
    """The fix: stream_with_context keeps the request for the generator."""

    @stream_with_context
    def generate():
        yield "start\n"
        yield f"name={request.args.get('name')}\n"

    return Response(generate(), mimetype="text/plain", headers=NOSNIFF)


@bp.get("/late-header")
def late_header():
    """Sets a header after the first yield: too late, it has been sent."""
    response = Response(mimetype="text/plain", headers=NOSNIFF)

    def generate():
        yield "first\n"
        response.headers["X-Set-Late"] = "yes"
        yield "second\n"

    response.response = generate()
    return response


@bp.get("/early-header")
def early_header():
    """The fix: the view sets the header before it returns the generator."""

    def generate():
        yield "first\n"
        yield "second\n"

    return Response(
        generate(), mimetype="text/plain", headers={**NOSNIFF, "X-Set-Late": "yes"}
    )


@bp.get("/probe")
def probe():
    """A page that reads one of the line streams above with XMLHttpRequest.

    ``header`` names a response header for the page to show at the end.
    """
    stream = request.args.get("stream", "")
    if stream not in PROBED:
        abort(400, f"stream must be one of {', '.join(PROBED)}")
    header = request.args.get("header", "")
    if header not in ("", "X-Set-Late"):
        abort(400, "header must be X-Set-Late")
    return render_template(
        "probe.html",
        stream=stream,
        stream_url=url_for(f".{PROBED[stream]}"),
        header=header,
    )


@bp.get("/connections")
def connections():
    """A page that opens ``streams`` fetch() readers at once."""
    streams = number("streams", 7, STREAMS)
    other_host = request.args.get("other_host", "")
    if other_host not in ("", "localhost", "127.0.0.1"):
        abort(400, "other_host must be localhost or 127.0.0.1")
    return render_template(
        "connections.html",
        streams=streams,
        other_host=other_host,
        stream_url=url_for(".nosniff"),
    )


def compress(app, streams=True):
    """WSGI middleware that gzips every response, the naive way.

    It collects the whole body before it compresses it, so a stream arrives
    all at once at the end. ``streams=False`` is the fix (Flask-Compress calls
    it ``COMPRESS_STREAMS = False``): a response with no Content-Length is
    being streamed, and is passed on untouched.
    """

    def wsgi(environ, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = app(environ, capture)
        names = {name.lower() for name, _ in captured["headers"]}
        if not streams and "content-length" not in names:
            start_response(captured["status"], captured["headers"])
            return body
        try:
            data = gzip.compress(b"".join(body))
        finally:
            if hasattr(body, "close"):
                body.close()
        headers = [
            (name, value)
            for name, value in captured["headers"]
            if name.lower() != "content-length"
        ]
        headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(data)))]
        start_response(captured["status"], headers)
        return [data]

    return wsgi
