"""Pitfalls that make a working stream look broken, each beside its fix.

``create_pitfalls_app()`` serves both versions of each, for notebook 06 and
its tests: the streams are plain lines, ``tick 0``, ``tick 1``, ...
"""

import gzip
import time

from flask import Flask, Response, abort, render_template, request, stream_with_context
from werkzeug.exceptions import HTTPException

from .app import STATIC, TEMPLATES, plain_error
from .params import INTEGER, SECONDS, Spec, number
from .sources import ticks
from .streams import STREAM_HEADERS

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# the connection-limit page reads streams from two host names
CORS = {"Access-Control-Allow-Origin": "*"}


# the pitfall views' own bounds: streams shorter than the main app's
COUNT = Spec(int, INTEGER, 0, 100_000, "an integer")
INTERVAL = Spec(float, SECONDS, 0.0, 60.0, "a number of seconds")
STREAMS = Spec(int, INTEGER, 1, 20, "an integer")
# the line streams the probe page can read, each a pitfall or its fix
PROBED = (
    "sniffed",
    "nosniff",
    "unmarked",
    "no-context",
    "with-context",
    "late-header",
    "early-header",
)


def create_pitfalls_app(source=ticks, count=40, interval=0.05):
    """The broken and the fixed view of each pitfall."""
    app = Flask(__name__, template_folder=TEMPLATES, static_folder=STATIC)
    app.register_error_handler(HTTPException, plain_error)

    def lines(headers):
        n = number("count", count, COUNT)
        wait = number("interval", interval, INTERVAL)
        return Response(source(n, wait), mimetype="text/plain", headers=headers)

    @app.get("/sniffed")
    def sniffed():
        """text/plain and nothing else: Chromium sniffs the first ~1 KB."""
        return lines(CORS)

    @app.get("/nosniff")
    def nosniff():
        """The fix: every header a stream needs (see livestream.streams)."""
        return lines({**STREAM_HEADERS, **CORS})

    @app.get("/unmarked")
    def unmarked():
        """No X-Accel-Buffering: a proxy such as nginx buffers it."""
        return lines({**NOSNIFF, **CORS})

    @app.get("/no-context")
    def no_context():
        """Reads ``request`` inside the generator: fails once streaming starts."""

        def generate():
            yield "start\n"
            yield f"name={request.args.get('name')}\n"  # outside any request now

        return Response(generate(), mimetype="text/plain", headers=NOSNIFF)

    @app.get("/with-context")
    def with_context():
        """The fix: stream_with_context keeps the request for the generator."""

        @stream_with_context
        def generate():
            yield "start\n"
            yield f"name={request.args.get('name')}\n"

        return Response(generate(), mimetype="text/plain", headers=NOSNIFF)

    @app.get("/late-header")
    def late_header():
        """Sets a header after the first yield: too late, it has been sent."""
        response = Response(mimetype="text/plain", headers=NOSNIFF)

        def generate():
            yield "first\n"
            response.headers["X-Set-Late"] = "yes"
            yield "second\n"

        response.response = generate()
        return response

    @app.get("/early-header")
    def early_header():
        """The fix: the view sets the header before it returns the generator."""

        def generate():
            yield "first\n"
            yield "second\n"

        return Response(
            generate(), mimetype="text/plain", headers={**NOSNIFF, "X-Set-Late": "yes"}
        )

    @app.get("/probe")
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
        return render_template("probe.html", stream=stream, header=header)

    @app.get("/connections")
    def connections():
        """A page that opens ``streams`` fetch() readers at once."""
        streams = number("streams", 7, STREAMS)
        other_host = request.args.get("other_host", "")
        if other_host not in ("", "localhost", "127.0.0.1"):
            abort(400, "other_host must be localhost or 127.0.0.1")
        return render_template(
            "connections.html", streams=streams, other_host=other_host
        )

    return app


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


def seconds_to_first_bytes(url):
    """How long a client waits for the first bytes of the body at ``url``."""
    import requests

    began = time.monotonic()
    with requests.get(url, stream=True, timeout=60) as response:
        next(response.iter_content(chunk_size=None), None)
        return time.monotonic() - began


def seconds_to_close(url, closings, timeout=10.0):
    """Read the first line at ``url`` and hang up; how long until the source
    appends a new ``time.monotonic()`` to ``closings`` (in its ``finally``).

    None if it has not within ``timeout`` seconds.
    """
    import requests

    with requests.get(url, stream=True, timeout=60) as response:
        next(response.iter_lines(chunk_size=None), None)
    left = time.monotonic()
    while time.monotonic() < left + timeout:
        later = [closed for closed in list(closings) if closed > left]
        if later:
            return min(later) - left
        time.sleep(0.02)
    return None


def connection_times(url, timeout=60.0):
    """Open the connections page at ``url`` in Chromium; when each stream began
    and ended, in seconds from the page's start."""
    from .tools.timing import in_browser

    def task(page):
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            "window.ended.filter((t) => t !== undefined).length"
            " === document.querySelectorAll('#streams li').length"
            " && window.ended.length > 0",
            timeout=timeout * 1000,
        )
        first, ended = page.evaluate("[window.firstBytes, window.ended]")
        return [(f / 1000, e / 1000) for f, e in zip(first, ended, strict=True)]

    return in_browser(task)
