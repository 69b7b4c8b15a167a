"""The app factory."""

import importlib.util
from pathlib import Path

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import answer as answer_page
from . import feed, params, views
from .sources import sqrt_demo
from .streams import Livestream

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

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
    # the largest request body /stream/answer reads, in bytes
    "ANSWER_MAX_BYTES": answer_page.MAX_BYTES,
    # bytes of messages a stream holds for a client that does not read them
    # yet; past it the source waits
    "STREAM_BUFFER_BYTES": 4_000_000,
    # the Host names the app answers (Flask's own setting, any port): the
    # local names; serve() adds the host it binds and a proxy's host. Another
    # Host gets 400, so a page on a name that only resolves here (DNS
    # rebinding) cannot read the streams. None answers every Host
    "TRUSTED_HOSTS": LOCAL_HOSTS,
}


def resource_folder(name):
    """The package's ``templates`` or ``static`` folder.

    A wheel carries them inside the package; a checkout keeps them at the top
    of the repository, beside it.
    """
    here = Path(__file__).resolve().parent
    inside = here / name
    return inside if inside.is_dir() else here.parent / name


TEMPLATES = resource_folder("templates")
STATIC = resource_folder("static")


def create_app(source=None, answer=None, **config):
    """Build the app that streams ``source(count, interval)`` to every page.

    ``answer(prompt)`` makes the pieces of text that /chat streams back to a
    prompt (by default, a made-up answer).

    ``config`` updates Flask's config; ``STREAM_COUNT`` and ``STREAM_INTERVAL``
    are the defaults for requests that leave ``count`` or ``interval`` out,
    ``SSE_KEEPALIVE`` (seconds) and ``SSE_RETRY_MS`` tune the SSE stream.
    """
    if source is not None and not callable(source):
        raise TypeError(
            "source must be a callable source(count, interval) that returns "
            f"the messages, not {type(source).__name__}"
        )
    if answer is not None and not callable(answer):
        raise TypeError(
            "answer must be a callable answer(prompt) that returns the pieces "
            f"of the answer, not {type(answer).__name__}"
        )
    lower = [key for key in config if not key.isupper()]
    if lower:
        raise TypeError(
            f"config keys are upper case, like STREAM_COUNT; got {', '.join(lower)}"
        )
    app = Flask(__name__, template_folder=TEMPLATES, static_folder=STATIC)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("LIVESTREAM")
    app.config.update(config)
    check_config(app.config)
    app.extensions["livestream"] = Livestream(
        source or sqrt_demo, answer or answer_page.made_up
    )

    app.register_blueprint(views.bp)
    app.register_blueprint(answer_page.bp)
    if feed_enabled(app.config):
        app.register_blueprint(feed.bp)
    app.register_error_handler(HTTPException, plain_error)
    return app


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
    limit = config["ANSWER_MAX_BYTES"]
    if not (_is_number(limit) and isinstance(limit, int) and limit > 0):
        raise ValueError("ANSWER_MAX_BYTES must be a whole number of bytes above 0")


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


def plain_error(error):
    """Any HTTP error as one line of text that a person or a script can read."""
    return (
        f"{error.description}\n",
        error.code,
        {"Content-Type": "text/plain; charset=utf-8"},
    )
