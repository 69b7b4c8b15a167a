"""Pitfalls that make a working stream look broken, each beside its fix.

``create_pitfalls_app()`` serves both versions of each, for notebook 06 and
its tests: the streams are plain lines, ``tick 0``, ``tick 1``, ...
"""

import gzip
import time

from flask import Flask, Response, abort, render_template, request, stream_with_context
from werkzeug.exceptions import BadRequest

from .app import _plain_error, _templates_folder
from .streams import STREAM_HEADERS

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# the connection-limit page reads streams from two host names
CORS = {"Access-Control-Allow-Origin": "*"}


def ticks(count, interval):
    """``tick 0``, ``tick 1``, ... one every ``interval`` seconds."""
    for i in range(count):
        yield f"tick {i}\n"
        if i < count - 1:
            time.sleep(interval)


def create_pitfalls_app(source=ticks, count=40, interval=0.05):
    """The broken and the fixed view of each pitfall."""
    app = Flask(__name__, template_folder=_templates_folder())
    app.register_error_handler(BadRequest, _plain_error)

    def lines(headers):
        n = _number("count", int, count, 0, 100_000)
        wait = _number("interval", float, interval, 0, 60)
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

    @app.get("/probe")
    def probe():
        """A page that reads a plain-line stream with XMLHttpRequest."""
        stream = request.args.get("stream", "")
        if stream not in ("sniffed", "nosniff"):
            abort(400, "stream must be sniffed or nosniff")
        return render_template("probe.html", stream=stream)

    @app.get("/connections")
    def connections():
        """A page that opens ``streams`` fetch() readers at once."""
        streams = _number("streams", int, 7, 1, 20)
        other_host = request.args.get("other_host", "")
        if other_host not in ("", "localhost", "127.0.0.1"):
            abort(400, "other_host must be localhost or 127.0.0.1")
        return render_template(
            "connections.html", streams=streams, other_host=other_host
        )

    return app


def _number(name, kind, default, low, high):
    """A bounded number from the query string, or a 400 that names it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        abort(400, f"{name} must be a number from {low} to {high}, got {raw[:40]!r}")
    return value


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


def connection_times(url, timeout=60.0):
    """Open the connections page at ``url`` in Chromium; when each stream began
    and ended, in seconds from the page's start."""
    from .browser import in_browser

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
