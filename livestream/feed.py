"""A live feed fanned out through Redis: publish once, every browser gets it.

``publish()`` appends a message to a Redis Stream (``XADD``); each SSE
connection reads the stream (``XREAD BLOCK``) from where it is, so every
browser on every worker process gets every message, in order. The Redis
entry id is the SSE ``id:``, so a browser that reconnects resumes from
``Last-Event-ID`` with nothing lost and nothing repeated, as long as the entry
is still in the stream: it keeps about ``MAXLEN`` entries (``MAXLEN ~``, which
lets Redis trim in whole blocks, so a few more stay).
"""

import json
import os
import re

from flask import Blueprint, abort, current_app, render_template, request, url_for

from . import params
from .framing import SSE_KEEPALIVE, framed, sse_event, sse_failure, sse_retry
from .streams import KEEPALIVE, Livestream, Outcome, relay, stream_response

REDIS_URL = "redis://127.0.0.1:6379/0"
STREAM = "livestream:feed"
MAXLEN = 10_000
# the SSE stream wakes this often when nothing is published, to send a
# keep-alive and to notice a client that left
BLOCK_MS = 1000

# connections a process may open to Redis: one per open stream, and a few
MAX_CONNECTIONS = 10_000

_ENTRY_ID = re.compile(r"[0-9]+-[0-9]+")


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
    # every open stream holds a connection while it waits in XREAD BLOCK
    return redis.Redis.from_url(
        url or redis_url(), decode_responses=True, max_connections=MAX_CONNECTIONS
    )


def publish(message, *, client=None, stream=STREAM, maxlen=MAXLEN):
    """Append ``message`` (a str or anything JSON can encode) to the feed.

    Returns the entry id, which browsers see as the event's id.
    """
    client = client or connect()
    fields = {"message": json.dumps(message, allow_nan=False)}
    return client.xadd(stream, fields, maxlen=maxlen, approximate=True)


def is_entry_id(text):
    """Whether ``text`` looks like a Redis Stream entry id, ``<ms>-<seq>``."""
    return bool(_ENTRY_ID.fullmatch(text))


def follow(client, after, stream=STREAM, block_ms=BLOCK_MS):
    """Yield ``(entry id, message)`` for each entry after ``after``, forever.

    ``after`` is an entry id, or ``"$"`` for only what comes next. Yields
    None once it knows where it starts (from then on nothing published is
    missed), and after each ``block_ms`` without an entry, so the caller can
    send a keep-alive and look whether anyone is still listening.
    """
    last = after
    if last == "$":
        # pin "$" down to a real id now, so nothing published between two
        # reads can slip past
        entries = client.xrevrange(stream, count=1)
        last = entries[0][0] if entries else "0-0"
    yield None
    while True:
        answer = client.xread({stream: last}, block=block_ms, count=1000)
        if not answer:
            yield None
            continue
        for entry_id, fields in answer[0][1]:
            last = entry_id
            yield entry_id, json.loads(fields["message"])


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


def client():
    """This app's Redis client, made on first use."""
    clients = current_app.extensions.setdefault("livestream.feed", {})
    if "redis" not in clients:
        clients["redis"] = connect(current_app.config["REDIS_URL"])
    return clients["redis"]


@bp.get("/feed")
def page():
    """The live feed from Redis, read with EventSource."""
    # ?after=<entry id> starts from the feed's history, after that entry
    after = entry_id("after", request.args.get("after"))
    return render_template(
        "feed.html", current="feed", stream_url=url_for(".stream", after=after)
    )


@bp.get("/stream/feed")
def stream():
    """The live feed as Server-Sent Events; each id is the Redis entry id.

    A new reader starts with what is published next; ``Last-Event-ID`` (or
    ``?after=``) resumes after that entry.
    """
    after = entry_id("after", request.args.get("after"))
    resume = request.headers.get("Last-Event-ID", "").strip()
    after = entry_id("Last-Event-ID", resume or None) or after or "$"
    entries = relay(
        follow(client(), after),
        request.environ,
        Livestream.of().open_streams,
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
