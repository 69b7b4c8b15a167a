"""The pages, one per technique, and the streams they read."""

import itertools
import os

from flask import (
    Blueprint,
    abort,
    current_app,
    render_template,
    request,
    stream_template,
    url_for,
)
from markupsafe import Markup

from . import mjpeg, params, tcp, websocket
from .framing import (
    SSE_END,
    SSE_KEEPALIVE,
    framed,
    html_item,
    htmx_end,
    htmx_ended,
    htmx_event,
    ndjson_line,
    plain_line,
    sse_event,
    sse_failure,
    sse_retry,
    ws_text,
)
from .settings import LOCAL_HOSTS
from .sources import run_source
from .state import AppState
from .streams import (
    KEEPALIVE,
    ClientGone,
    Outcome,
    client_socket,
    relay,
    stream_response,
)
from .techniques import PAGES, TECHNIQUES, find

bp = Blueprint("livestream", __name__)

# WebSocket close codes: a normal end, and a server that could not go on
WS_DONE = 1000
WS_FAILED = 1011
# a close frame's reason is at most 123 bytes
WS_REASON_BYTES = 120


@bp.app_context_processor
def page_context():
    """What every page's template uses: the technique table and the options
    every page takes from its query (count, interval, keep, embed)."""
    return {"techniques": TECHNIQUES, **params.page_options()}


def open_source(start=0, keepalive=None, gone=None):
    """This request's run of the app's source, relayed from a thread of its own."""
    state = AppState.of()
    settings = params.stream_params()
    messages = run_source(state.source, settings["count"], settings["interval"], start)
    budget = current_app.config["STREAM_BUFFER_BYTES"]
    return relay(messages, request.environ, state.open_streams, budget, keepalive, gone)


@bp.get(f"/<any({', '.join(PAGES)}):page>")
def page(page):
    """The page that shows the stream with one technique."""
    technique = find(page, params.flag("poll")) or find(page)
    query = params.stream_params()
    if technique.markup_from_server:
        # the server draws the page's log, so it must know how much it keeps
        query = {**query, "keep": params.page_options()["keep"]}
    stream_url = url_for(f".{technique.stream}", **query)
    return render_template(
        technique.template,
        current=technique.name,
        stream_url=stream_url,
        # only the WebSocket page reads it: resume=0 reconnects without the
        # resume token, to show what a WebSocket loses on its own
        resume=params.flag("resume", default=True),
        accept_sse=params.accept_sse(),
    )


@bp.get("/")
def gallery():
    """Every technique side by side on the same stream."""
    return render_template("gallery.html", current="gallery", other=other_local_name())


def other_local_name():
    """This server under the machine's other local name, or "".

    A browser opens at most six connections to one host at once, and each
    frame's stream holds one for as long as it runs: the gallery has more
    frames than that, so a later frame would wait for a stream to end (lesson
    06's pitfall). Every other frame goes to the other name, a host of its own
    to the browser; not a picture, which headless Chromium does not paint in
    a frame of another origin. Behind a proxy's path there is only the one
    name.
    """
    name, _, port = request.host.partition(":")
    if request.script_root or name not in LOCAL_HOSTS:
        return ""
    (other,) = [local for local in LOCAL_HOSTS if local != name]
    return f"{request.scheme}://{other}" + (f":{port}" if port else "")


@bp.get("/status")
def status():
    """What the app is doing now, as JSON: open streams, and which process."""
    return {
        "active_streams": len(AppState.of().open_streams),
        "pid": os.getpid(),
    }


@bp.get("/stream/text")
def stream_text():
    """The classic answer's stream: plain text, one message a line."""
    batches = open_source()
    return stream_response(framed(batches, plain_line), "text/plain", batches.close)


@bp.get("/stream/ndjson")
def stream_ndjson():
    """Newline-delimited JSON: a message with a newline in it stays whole."""
    batches = open_source()
    return stream_response(
        framed(batches, ndjson_line), "application/x-ndjson", batches.close
    )


@bp.get("/stream/html")
def stream_html():
    """An HTML document that grows by one escaped ``.message`` per message."""
    batches = open_source()
    outcome = Outcome(current_app.logger)
    # html_item escapes each message into its list item, so the joined items
    # are markup; stream_template keeps the request context for the
    # generator, so url_for works mid-stream
    items = outcome.watch(map(Markup, framed(batches, html_item)))
    body = stream_template("stream.html", items=items, outcome=outcome)
    return stream_response(body, "text/html", batches.close)


def event_stream(event, last):
    """An SSE response of this request's run of the source, resumed after its
    ``Last-Event-ID``: the retry, ``event(message, id)`` per message,
    keep-alives, then ``last(error)``, the event that ends it (``error`` is
    None when the source ended well)."""
    start = params.last_event_id(params.stream_params()["count"]) + 1
    events = open_source(start, current_app.config["SSE_KEEPALIVE"])
    retry = current_app.config["SSE_RETRY_MS"]
    outcome = Outcome(current_app.logger)

    def frames():
        ids = itertools.count(start)
        for batch in events:
            if batch is KEEPALIVE:
                yield SSE_KEEPALIVE
            else:
                yield from framed([batch], lambda m: event(m, next(ids)))

    def body():
        yield sse_retry(retry)
        yield from outcome.watch(frames())
        yield last(outcome.error)

    return stream_response(body(), "text/event-stream", events.close)


@bp.get("/stream/sse")
def stream_sse():
    """Server-Sent Events: an id per message, keep-alives, and an end event."""
    # a failure is final: the page closes its EventSource rather than
    # reconnect into the same error again
    return event_stream(
        sse_event, lambda error: sse_failure(error) if error else SSE_END
    )


@bp.get("/stream/htmx")
def stream_htmx():
    """SSE whose data are HTML for htmx's SSE extension: each message's
    escaped list item and the swaps that update the page's readout, then an
    end event that says Done or the error."""
    # the server draws the page's log, so it keeps the log to the page's size
    keep = params.number("keep", params.KEEP)
    return event_stream(lambda message, id: htmx_event(message, id, keep), htmx_end)


@bp.get("/htmx/stop")
def htmx_stop():
    """What the htmx page's Stop button swaps in: it deletes the element that
    holds the stream (htmx closes its EventSource with it), and this says
    Stopped and disables the button."""
    return htmx_ended("Stopped")


@bp.get("/stream/mjpeg")
def stream_mjpeg():
    """Motion JPEG: a picture per message, drawn by the app's ``picture`` from
    the messages so far, each replacing the last in an ``<img>``; the last
    says Done, or what went wrong."""
    batches = open_source()
    outcome = Outcome(current_app.logger)
    body = mjpeg.frames(batches, AppState.of().picture, outcome)
    return stream_response(body, mjpeg.MIMETYPE, batches.close)


@bp.get("/stream/ws")
def stream_ws_over_http():
    """/stream/ws without the upgrade: say what it is rather than a bare 400."""
    params.after(params.stream_params()["count"])
    abort(400, '/stream/ws is a WebSocket: open it with new WebSocket("ws://...")')


@bp.before_request
def check_before_upgrade():
    """A WebSocket's query is checked before the upgrade, so a bad one gets
    the same one-line 400 as any stream rather than a socket that closes."""
    if request.endpoint == "livestream.stream_ws":
        params.after(params.stream_params()["count"])


@bp.route("/stream/ws", websocket=True)
def stream_ws():
    """A WebSocket: one text message per message, then an empty binary
    message and close code 1000.

    It has no ``Last-Event-ID``: a page that reconnects says where it was
    with ``?after=<the last id it has>``. What the client sends is read and
    dropped, within limits (see livestream.websocket).
    """
    start = params.after(params.stream_params()["count"]) + 1
    refused = websocket.refusal(request.headers)
    if refused:
        return refused
    sock = client_socket(request.environ)
    if sock is None:
        abort(501, "this server does not hand over its socket: serve() and gunicorn do")
    config = current_app.config
    # a vanished client fails the socket's reader after VANISH_TIMEOUT s
    tcp.drop_when_silent(sock, config["VANISH_TIMEOUT"])
    ws = websocket.accept(
        request.environ,
        config["WS_MAX_MESSAGE_BYTES"],
        config["WS_MAX_MESSAGES_PER_SECOND"],
    )
    if not isinstance(ws, websocket.StreamSocket):
        return ws  # the library found the handshake wanting
    # the socket's own reader thread sees a close or a hang-up first
    batches = open_source(start, gone=lambda: not ws.connected)
    outcome = Outcome(current_app.logger)
    texts = (ws_text(message) for batch in batches for message in batch)
    try:
        for text in outcome.watch(texts):
            ws.send(text)
        # the end goes in-band too, as a binary message (every message is
        # text): jupyter-server-proxy relays frames but not the close code,
        # which a page behind it sees as 1005, no code at all. Empty is the
        # end; any other is the failure's account
        if outcome.error:
            ws.send(outcome.error.encode())
            reason = outcome.error.encode()[:WS_REASON_BYTES].decode(errors="ignore")
            ws.close(WS_FAILED, reason)
        else:
            ws.send(b"")
            ws.close(WS_DONE, "end")
    except (ClientGone, websocket.ConnectionClosed):
        pass  # nobody left to tell how it ended
    finally:
        batches.close()
    return websocket.finished(ws)
