"""A live feed fanned out through Redis: publish once, every browser gets it.

``publish()`` appends a message to a topic's Redis Stream (``XADD``). Each
worker process reads each topic once (:class:`~livestream.window.Window`) and
fans the entries out to its SSE streams in memory, so every browser on every
worker gets every message, in order. The Redis entry id is the SSE ``id:``,
so a browser that reconnects resumes from ``Last-Event-ID`` with nothing lost
and nothing repeated, as long as the entry is still in the stream: it keeps
about ``MAXLEN`` entries (``MAXLEN ~``, which lets Redis trim in whole blocks,
so a few more stay).

This module is the feed's public side, for lessons and tools; the pages and
the stream are in :mod:`livestream.feed_views`.
"""

import json
import os
import re

from .framing import sse_event
from .window import MAX_ENTRY_BYTES, parse_id

REDIS_URL = "redis://127.0.0.1:6379/0"
# the topic /feed shows; each topic is the Redis Stream livestream:<topic>
# (see stream_key)
TOPIC = "feed"
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


def publish(
    message, topic=TOPIC, *, client=None, maxlen=MAXLEN, max_bytes=MAX_ENTRY_BYTES
):
    """Append ``message`` (a str or anything JSON can encode) to ``topic``.

    Returns the entry id, which browsers see as the event's id. A message
    SSE cannot carry is refused here (:class:`~livestream.framing.Unsendable`),
    and so is one whose JSON text is larger than ``max_bytes`` (a
    :class:`ValueError`): the app's ``FEED_MAX_ENTRY_BYTES``, 1 MiB by
    default, is what its streams send.
    """
    key = stream_key(topic)
    sse_event(message, "0-0")  # refuse what no page could be sent
    text = json.dumps(message, allow_nan=False)  # ASCII: a character is a byte
    if len(text) > max_bytes:
        raise ValueError(
            f"message is {len(text)} bytes as JSON, more than the feed's limit of "
            f"{max_bytes} (publish(max_bytes=...), the app's FEED_MAX_ENTRY_BYTES)"
        )
    client = client or connect()
    return client.xadd(key, {"message": text}, maxlen=maxlen, approximate=True)


def is_entry_id(text):
    """Whether ``text`` looks like a Redis Stream entry id, ``<ms>-<seq>``."""
    return bool(_ENTRY_ID.fullmatch(text)) and max(parse_id(text)) < 2**64
