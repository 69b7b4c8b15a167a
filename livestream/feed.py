"""A live feed fanned out through Redis: publish once, every browser gets it.

``publish()`` appends a message to a topic's Redis Stream (``XADD``). Each
worker process reads each topic once (:class:`~livestream.window.Window`) and
fans the entries out to its SSE streams in memory, so every browser on every
worker gets every message, in order. The Redis entry id is the SSE ``id:``,
so a browser that reconnects resumes from ``Last-Event-ID`` with nothing lost
and nothing repeated, as long as the entry is still in the stream: it keeps
about ``MAXLEN`` entries (``MAXLEN ~``, which lets Redis trim in whole blocks,
so a few more stay).
"""

import json
import os
import re
import threading

from flask import Blueprint, abort, current_app, render_template, request, url_for

from . import params
from .framing import sse_event, sse_failure, sse_retry
from .streams import Livestream, Outcome, client_gone, stream_response
from .window import Window, parse_id

REDIS_URL = "redis://127.0.0.1:6379/0"
# the topic /feed shows; each topic is the Redis Stream livestream:<topic>
TOPIC = "feed"
STREAM = "livestream:feed"
MAXLEN = 10_000
# a Redis that does not answer within this long counts as away (the reader's
# XREAD BLOCK waits one second of it)
SOCKET_TIMEOUT = 10.0

_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_TOPIC = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def redis_url():
    """``$LIVESTREAM_REDIS_URL``, else a Redis on this machine's default port."""
    return os.environ.get("LIVESTREAM_REDIS_URL", REDIS_URL)


def connect(url=None):
    """A Redis client for ``url`` (by default :func:`redis_url`)."""
    try:
        import redis
    except ImportError:
        raise ImportError(
            "the live feed needs redis-py: pip install 'livestream[production]'"
        ) from None
    return redis.Redis.from_url(
        url or redis_url(),
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=2,
    )


def is_topic(text):
    """Whether ``text`` can name a topic: 1 to 64 letters, digits, ``_.-``."""
    return bool(_TOPIC.fullmatch(text))


def stream_key(topic):
    """The Redis Stream that carries ``topic``."""
    if not is_topic(topic):
        raise ValueError(
            f"topic must be 1 to 64 letters, digits, '_', '.' or '-', got {topic!r}"
        )
    return f"livestream:{topic}"


def publish(message, topic=TOPIC, *, client=None, maxlen=MAXLEN):
    """Append ``message`` (a str or anything JSON can encode) to ``topic``.

    Returns the entry id, which browsers see as the event's id. A message
    SSE cannot carry is refused here (:class:`~livestream.framing.Unsendable`).
    """
    key = stream_key(topic)
    sse_event(message, "0-0")  # refuse what no page could be sent
    client = client or connect()
    fields = {"message": json.dumps(message, allow_nan=False)}
    return client.xadd(key, fields, maxlen=maxlen, approximate=True)


def is_entry_id(text):
    """Whether ``text`` looks like a Redis Stream entry id, ``<ms>-<seq>``."""
    return bool(_ENTRY_ID.fullmatch(text)) and max(parse_id(text)) < 2**64


_windows = {}
_windows_lock = threading.Lock()
_windows_pid = None


def window(url, topic):
    """This process's window on ``topic`` at ``url``, started on first use."""
    global _windows_pid
    key = stream_key(topic)
    with _windows_lock:
        if _windows_pid != os.getpid():
            # a forked worker: the parent's reader threads did not come along
            _windows.clear()
            _windows_pid = os.getpid()
        found = _windows.get((url, key))
        if found is None or found.error:
            found = _windows[url, key] = Window(lambda: connect(url), key)
        return found


bp = Blueprint("feed", __name__)


def entry_id(name, raw):
    """``raw`` if it is an entry id, else a 400 that names ``name``."""
    if raw is not None and not is_entry_id(raw):
        abort(
            400,
            f"{name} must be a Redis Stream entry id such as 1700000000000-0, "
            f"got {params.shown(raw)}",
        )
    return raw


def topic_name(raw):
    """``raw`` if it can name a topic, else a 400 that names ``topic``."""
    if not is_topic(raw):
        abort(
            400,
            "topic must be 1 to 64 letters, digits, '_', '.' or '-', "
            f"got {params.shown(raw)}",
        )
    return raw


@bp.get("/feed", defaults={"topic": TOPIC})
@bp.get("/feed/<topic>")
def page(topic):
    """A topic of the live feed from Redis, read with EventSource."""
    topic = topic_name(topic)
    # ?after=<entry id> starts from the feed's history, after that entry
    after = entry_id("after", request.args.get("after"))
    return render_template(
        "feed.html",
        current="feed",
        topic=topic,
        stream_url=url_for(".stream", topic=topic, after=after),
    )


@bp.get("/stream/feed", defaults={"topic": TOPIC})
@bp.get("/stream/feed/<topic>")
def stream(topic):
    """A topic as Server-Sent Events; each id is the Redis entry id.

    A new reader starts with what is published next; ``Last-Event-ID`` (or
    ``?after=``) resumes after that entry.
    """
    topic = topic_name(topic)
    after = entry_id("after", request.args.get("after"))
    resume = request.headers.get("Last-Event-ID", "").strip()
    after = entry_id("Last-Event-ID", resume or None) or after
    shared = window(current_app.config["REDIS_URL"], topic)
    # werkzeug and gunicorn each hand over the client's socket under a name
    # of their own; with neither, a client that left is noticed on a write
    sock = request.environ.get("gunicorn.socket") or request.environ.get(
        "werkzeug.socket"
    )
    entries = shared.stream(
        parse_id(after) if after else None,
        current_app.config["SSE_KEEPALIVE"],
        (lambda: client_gone(sock)) if sock is not None else (lambda: False),
    )
    retry = current_app.config["SSE_RETRY_MS"]
    outcome = Outcome(current_app.logger)
    open_streams = Livestream.of().open_streams
    open_streams.add(1)

    def body():
        yield sse_retry(retry).encode()
        yield from outcome.watch(entries)
        if outcome.error:
            yield sse_failure(outcome.error).encode()

    def close():
        entries.close()
        open_streams.add(-1)

    return stream_response(body(), "text/event-stream", close)
