"""The live feed's page and its SSE stream, served by each worker process from
its own window on the topic's Redis Stream (see :mod:`livestream.feed`)."""

from flask import Blueprint, abort, current_app, render_template, request, url_for

from . import params
from .broadcast import Spot
from .feed import TOPIC, connect, is_entry_id, is_topic, stream_key
from .framing import sse_failure, sse_retry
from .state import AppState
from .streams import Outcome, client_gone, client_socket, stream_response
from .window import TooManyTopics, parse_id

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
    state, config = AppState.of(), current_app.config
    sock = client_socket(request.environ)
    gone = (lambda: client_gone(sock)) if sock is not None else (lambda: False)
    try:
        # this stream follows the window until close() leaves it
        shared = state.windows.follow(
            config["REDIS_URL"],
            stream_key(topic),
            connect,
            idle_close=config["FEED_IDLE_CLOSE"],
            max_topics=config["FEED_MAX_TOPICS"],
            max_bytes=config["FEED_MAX_ENTRY_BYTES"],
        )
    except TooManyTopics as error:
        abort(
            503,
            f"{error}, the most FEED_MAX_TOPICS allows; another topic can be "
            "followed when one closes",
        )
    # where the server allows, the stream parks once it has caught up, and
    # the window's reader writes to its socket (livestream.broadcast)
    spot = Spot.make(
        request.environ, config["STREAM_BUFFER_BYTES"], config["SSE_KEEPALIVE"]
    )
    entries = shared.stream(
        parse_id(after) if after else None, config["SSE_KEEPALIVE"], gone, spot
    )
    retry = config["SSE_RETRY_MS"]
    outcome = Outcome(current_app.logger)
    open_streams = state.open_streams
    open_streams.add(1)

    def body():
        yield sse_retry(retry).encode()
        yield from outcome.watch(entries)
        if outcome.error:
            yield sse_failure(outcome.error).encode()

    def close():
        entries.close()
        if spot is not None:
            spot.close()
        shared.leave()
        open_streams.add(-1)

    return stream_response(body(), "text/event-stream", close)
