"""A streamed answer to a POST: the page sends a prompt as JSON, the server
streams the answer back as NDJSON while a generator makes it, piece by piece.

The generator is ``answer(prompt)``: any callable that returns the pieces of
text. The default, :func:`made_up`, is a stand-in for a model's streaming
client, which would go in its place.
"""

import contextlib
import json
import re
import sys
import time

from flask import Blueprint, abort, current_app, render_template, request
from werkzeug.exceptions import ClientDisconnected

from . import params
from .framing import framed, ndjson_line
from .state import AppState
from .streams import client_socket, relay, stream_response

bp = Blueprint("answer", __name__)

# the longest body /stream/answer reads, in bytes (config ANSWER_MAX_BYTES)
MAX_BYTES = 16_384
# how deep the body's arrays and objects may nest (config ANSWER_MAX_DEPTH):
# json.loads recurses once a level, and a few thousand levels, which fit in
# a few kilobytes, exhaust Python's stack
MAX_DEPTH = 32
# seconds each read of the body may wait (config ANSWER_BODY_TIMEOUT): as long
# as a request's head may take to arrive (livestream.httpd.HEAD_TIMEOUT)
BODY_TIMEOUT = 10.0
# how long the made-up answer waits between words
WORD_INTERVAL = 0.05


def made_up(prompt, interval=WORD_INTERVAL):
    """A made-up answer, a word every ``interval`` s: the prompt's words, then
    the same words backwards. Deterministic, so a lesson needs no model."""
    words = prompt.split()[:30] or ["nothing"]
    answer = ["You", "asked:", *words, "—", "backwards,", "that", "is:"]
    answer += [*reversed(words), "(a", "made-up", "answer)."]
    for i, word in enumerate(answer):
        if i:
            time.sleep(interval)
        yield word if i == 0 else " " + word


@bp.get("/chat")
def chat():
    """The page: a prompt, Send, Stop, and the answer as it grows.

    ``?prompt=`` fills the prompt in; ``ask=1`` sends it as the page opens.
    """
    return render_template(
        "chat.html",
        current="chat",
        prompt=request.args.get("prompt", ""),
        ask=params.flag("ask"),
        accept_sse=params.accept_sse(),
    )


@bp.post("/stream/answer")
def stream_answer():
    """The answer to ``{"prompt": "..."}``, one JSON string a line."""
    prompt = read_prompt()
    state = AppState.of()
    budget = current_app.config["STREAM_BUFFER_BYTES"]
    batches = relay(state.answer(prompt), request.environ, state.open_streams, budget)
    return stream_response(
        framed(batches, ndjson_line), "application/x-ndjson", batches.close
    )


def read_prompt():
    """The ``prompt`` of the JSON body, or a 408, a 413 or a one-line 400
    saying why."""
    limit = current_app.config["ANSWER_MAX_BYTES"]
    wait = current_app.config["ANSWER_BODY_TIMEOUT"]
    try:
        with body_deadline(client_socket(request.environ), wait):
            raw = read_body(limit)
    except (TimeoutError, ClientDisconnected) as error:
        # werkzeug reports a read that timed out as a client that left
        if not isinstance(error, TimeoutError) and not isinstance(
            error.__context__, TimeoutError
        ):
            raise
        abort(
            408,
            f"the request body did not arrive within {wait:g} s (ANSWER_BODY_TIMEOUT)",
        )
    except body_errors() as error:
        abort(400, f"the request body could not be read: {shown_error(error)}")
    if raw is None:
        abort(413, f"the request body must be at most {limit} bytes (ANSWER_MAX_BYTES)")
    depth = current_app.config["ANSWER_MAX_DEPTH"]
    too_deep = f"the body nests deeper than {depth} levels (ANSWER_MAX_DEPTH)"
    if nests_deeper(raw, depth):
        abort(400, too_deep)
    try:
        body = json.loads(raw)
    except ValueError as error:  # bad UTF-8 too
        abort(400, f'the body must be JSON like {{"prompt": "..."}}: {error}')
    except RecursionError:
        # only where the count above is unsure: JSON in UTF-16 or UTF-32
        abort(400, too_deep)
    if not isinstance(body, dict) or "prompt" not in body:
        abort(400, 'prompt is missing: send {"prompt": "..."}')
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        shown = params.shown(json.dumps(prompt))
        abort(400, f"prompt must be a string, got {shown}")
    return prompt


def read_body(limit):
    """The body, or None if it is longer than ``limit`` bytes.

    Counted while reading, too: a chunked body has no Content-Length.
    """
    if (request.content_length or 0) > limit:
        return None
    pieces, left = [], limit + 1
    while left:
        piece = request.stream.read(left)
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return None if left == 0 else b"".join(pieces)


@contextlib.contextmanager
def body_deadline(sock, seconds):
    """Let each read of the body wait ``seconds`` at most: a client that
    stops sending its body part-way would otherwise hold the connection and
    its thread for as long as it likes."""
    if sock is None:
        yield
        return
    before = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        yield
    finally:
        sock.settimeout(before)


def body_errors():
    """What reading a body that breaks the rules of HTTP raises: an OSError
    from werkzeug and from serve()'s server (a bad chunk, a body cut short),
    and gunicorn's own parse errors when gunicorn serves the app."""
    errors = sys.modules.get("gunicorn.http.errors")
    return (OSError, errors.ParseException) if errors else (OSError,)


def shown_error(error):
    """An error's message on one line, at most about 200 characters."""
    return " ".join(str(error).split())[:200] or type(error).__name__


# what can change the nesting in JSON text: brackets, and the quotes and
# backslashes that tell a bracket in a string from one outside
_SIGNIFICANT = re.compile(rb'[\[\]{}"\\]')


def nests_deeper(raw, limit):
    """Whether the arrays and objects of JSON text ``raw`` nest deeper than
    ``limit``, found without recursing: one pass over the bytes that matter,
    counting brackets outside strings. Exact for UTF-8, where none of those
    bytes occurs inside another character."""
    depth, in_string, escaped = 0, False, -1
    for match in _SIGNIFICANT.finditer(raw):
        at, byte = match.start(), match[0]
        if at == escaped:
            continue
        if in_string:
            if byte == b"\\":
                escaped = at + 1
            elif byte == b'"':
                in_string = False
        elif byte == b'"':
            in_string = True
        elif byte in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif byte in (b"]", b"}"):
            depth -= 1
    return False
