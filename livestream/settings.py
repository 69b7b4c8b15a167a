"""The app's settings: their defaults, and the checks create_app() makes."""

import importlib.util
from urllib.parse import urlsplit

from . import answer, params, tcp, websocket, window
from .guard import parse_origin

# not IPv6 literals: werkzeug 3.1 cuts every trusted name at its first ":",
# so "[::1]" can never match (reach a server on ::1 as localhost)
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# what a server binds that names no host: every interface, or nothing said
NO_NAME = ("", None, "0.0.0.0", "::")
# the origins of pages on this machine, on any port: JupyterLab and Notebook
# 7 showing a page inline, and the other pages of a lesson
LOCAL_ORIGINS = tuple(
    f"{scheme}://{host}:*" for host in LOCAL_HOSTS for scheme in ("http", "https")
)

# the settings create_app() adds to Flask's config; LIVESTREAM_<NAME> in the
# environment sets any of them, and create_app()'s keywords win over both
DEFAULTS = {
    "STREAM_COUNT": 500,
    "STREAM_INTERVAL": 1.0,
    # seconds without a message before an SSE stream sends a comment, so that
    # proxies and browsers don't take a quiet stream for a dead one
    "SSE_KEEPALIVE": 15.0,
    # how long a browser waits before it reconnects a dropped SSE stream
    "SSE_RETRY_MS": 1000,
    # the live feed (livestream.feed): where Redis is, and whether to serve
    # /feed at all; None serves it when redis-py is there and REDIS_URL is set
    "REDIS_URL": None,
    "FEED": None,
    # what the feed holds in each worker process (livestream.window): a
    # topic's reader (a thread, two Redis connections) stops this many seconds
    # after its last stream leaves; at most FEED_MAX_TOPICS topics are followed
    # at once, and a stream of another gets 503; an entry whose JSON is larger
    # than FEED_MAX_ENTRY_BYTES is not sent (a comment says so), so one huge
    # entry cannot cost a copy per stream
    "FEED_IDLE_CLOSE": window.IDLE_CLOSE,
    "FEED_MAX_TOPICS": window.MAX_TOPICS,
    "FEED_MAX_ENTRY_BYTES": window.MAX_ENTRY_BYTES,
    # the largest request body /stream/answer reads, in bytes
    "ANSWER_MAX_BYTES": answer.MAX_BYTES,
    # how deep the arrays and objects of that body may nest; deeper gets 400
    "ANSWER_MAX_DEPTH": answer.MAX_DEPTH,
    # seconds each read of /stream/answer's body may wait for the client; one
    # that stops sending part-way gets 408 rather than holding a thread
    "ANSWER_BODY_TIMEOUT": answer.BODY_TIMEOUT,
    # bytes of messages a stream holds for a client that does not read them
    # yet; past it the source waits
    "STREAM_BUFFER_BYTES": 4_000_000,
    # seconds a stream's client may leave the server unanswered before the
    # kernel drops it (livestream.tcp): a client whose network vanished is
    # freed within SSE_KEEPALIVE + VANISH_TIMEOUT + 1 s, 46 s by default.
    # 0 leaves the system's defaults (about 15 minutes, or never for a
    # stream that writes nothing)
    "VANISH_TIMEOUT": tcp.TIMEOUT,
    # what a WebSocket client may send to a stream, which reads it and drops
    # it (livestream.websocket): the largest message, counted after
    # inflating (past it, close code 1009), and how many messages and pings
    # a second (past it, 1008)
    "WS_MAX_MESSAGE_BYTES": websocket.MAX_MESSAGE_BYTES,
    "WS_MAX_MESSAGES_PER_SECOND": websocket.MAX_MESSAGES_PER_SECOND,
    # the Host names the app answers (Flask's own setting, any port): the
    # local names; serve() adds the host it binds and a proxy's host. Another
    # Host gets 400, so a page on a name that only resolves here (DNS
    # rebinding) cannot read the streams. None answers every Host
    "TRUSTED_HOSTS": LOCAL_HOSTS,
    # the origins besides the app's own whose pages may open a WebSocket, send
    # a POST, or show a page in a frame (livestream.guard): origins such as
    # https://hub.example, or with any port, http://localhost:*. serve() adds
    # the origin of a proxy_prefix that names one. None allows every origin
    "ALLOWED_ORIGINS": LOCAL_ORIGINS,
}


def check_config(config):
    """Turn the stream settings into numbers, or say which one is wrong."""
    for name in params.STREAM:
        key = f"STREAM_{name.upper()}"
        try:
            config[key] = params.check(name, str(config[key]))
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    hosts = config["TRUSTED_HOSTS"]
    if isinstance(hosts, str):  # LIVESTREAM_TRUSTED_HOSTS=a.example,b.example
        hosts = hosts.split(",")
    if hosts is not None:
        config["TRUSTED_HOSTS"] = [host.strip() for host in hosts if host.strip()]
    config["ALLOWED_ORIGINS"] = check_origins(config["ALLOWED_ORIGINS"])
    budget = config["STREAM_BUFFER_BYTES"]
    if not (isinstance(budget, int) and budget >= 1):
        raise ValueError(
            "STREAM_BUFFER_BYTES must be a whole number of bytes, 1 or more"
        )
    keepalive, retry = config["SSE_KEEPALIVE"], config["SSE_RETRY_MS"]
    if not (_is_number(keepalive) and 0 < keepalive <= 3600):
        raise ValueError(
            "SSE_KEEPALIVE must be a number of seconds above 0, at most 3600"
        )
    if not (_is_number(retry) and isinstance(retry, int) and retry >= 0):
        raise ValueError(
            "SSE_RETRY_MS must be a whole number of milliseconds, 0 or more"
        )
    vanish = config["VANISH_TIMEOUT"]
    if not (_is_number(vanish) and (vanish == 0 or 1 <= vanish <= 3600)):
        raise ValueError(
            "VANISH_TIMEOUT must be a number of seconds from 1 to 3600, or 0 for "
            "the system's defaults"
        )
    _check_feed(config)
    for key in ("WS_MAX_MESSAGE_BYTES", "WS_MAX_MESSAGES_PER_SECOND"):
        value = config[key]
        if not (_is_number(value) and isinstance(value, int) and value >= 1):
            raise ValueError(f"{key} must be a whole number above 0")
    limit = config["ANSWER_MAX_BYTES"]
    if not (_is_number(limit) and isinstance(limit, int) and limit > 0):
        raise ValueError("ANSWER_MAX_BYTES must be a whole number of bytes above 0")
    depth = config["ANSWER_MAX_DEPTH"]
    if not (_is_number(depth) and isinstance(depth, int) and 1 <= depth <= 500):
        raise ValueError("ANSWER_MAX_DEPTH must be a whole number from 1 to 500")
    wait = config["ANSWER_BODY_TIMEOUT"]
    if not (_is_number(wait) and 0 < wait <= 3600):
        raise ValueError(
            "ANSWER_BODY_TIMEOUT must be a number of seconds above 0, at most 3600"
        )


def check_origins(origins):
    """ALLOWED_ORIGINS as a list of origins, or a ValueError naming the bad one."""
    if origins is None:
        return None
    if isinstance(origins, str):  # LIVESTREAM_ALLOWED_ORIGINS=https://a,https://b
        origins = origins.split(",")
    checked = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if not origin:
            continue
        bare = origin[:-2] if origin.endswith(":*") else origin
        if parse_origin(bare) is None:
            raise ValueError(
                "ALLOWED_ORIGINS: each must be an origin such as "
                f"https://hub.example or http://localhost:*, got {origin!r}"
            )
        checked.append(origin)
    return checked


def served_at(config, host, proxy_url=""):
    """Make the app answer the names it is reached by when served on ``host``
    and published at ``proxy_url``: add them to TRUSTED_HOSTS, and the proxy's
    origin to ALLOWED_ORIGINS (unless either allows everything)."""
    proxy = urlsplit(proxy_url)
    # a server on every interface has no one name to add: TRUSTED_HOSTS
    # lists the names it is reached by
    hosts = [name for name in (host, proxy.hostname) if name not in NO_NAME]
    if config.get("TRUSTED_HOSTS") is not None:
        trusted = list(config["TRUSTED_HOSTS"])
        config["TRUSTED_HOSTS"] = trusted + [h for h in hosts if h not in trusted]
    origin = f"{proxy.scheme}://{proxy.netloc}" if proxy.hostname else None
    allowed = config.get("ALLOWED_ORIGINS")
    if origin and allowed is not None and origin not in allowed:
        config["ALLOWED_ORIGINS"] = [*allowed, origin]


def _check_feed(config):
    idle, topics = config["FEED_IDLE_CLOSE"], config["FEED_MAX_TOPICS"]
    if not (_is_number(idle) and 0 < idle <= 3600):
        raise ValueError(
            "FEED_IDLE_CLOSE must be a number of seconds above 0, at most 3600"
        )
    if not (_is_number(topics) and isinstance(topics, int) and topics >= 1):
        raise ValueError("FEED_MAX_TOPICS must be a whole number, 1 or more")
    # the window keeps at least four of the largest entries
    most = window.WINDOW_BYTES // 4
    entry = config["FEED_MAX_ENTRY_BYTES"]
    if not (_is_number(entry) and isinstance(entry, int) and 1 <= entry <= most):
        raise ValueError(
            f"FEED_MAX_ENTRY_BYTES must be a whole number of bytes from 1 to {most}"
        )


def feed_enabled(config):
    """Whether to serve the live feed; FEED=True without redis-py is an error."""
    has_redis = importlib.util.find_spec("redis") is not None
    if config["FEED"] is None:
        return has_redis and bool(config["REDIS_URL"])
    if config["FEED"] and not has_redis:
        raise ImportError(
            "FEED is on but redis-py is not installed: "
            "pip install 'livestream[production]'"
        )
    return bool(config["FEED"])


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)
