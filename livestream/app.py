"""The app factory."""

from pathlib import Path

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import answer as answer_page
from . import feed_views, guard, mjpeg, views
from .settings import DEFAULTS, check_config, feed_enabled
from .sources import sqrt_demo
from .state import EXTENSION, AppState


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


def create_app(source=None, answer=None, picture=None, **config):
    """Build the app that streams ``source(count, interval)`` to every page.

    ``answer(prompt)`` makes the pieces of text that /chat streams back to a
    prompt (by default, a made-up answer). ``picture(messages)`` draws each
    frame of /mjpeg from the messages so far, the newest last, and returns a
    PIL Image or JPEG bytes (by default, the latest value and a chart).

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
    if picture is not None and not callable(picture):
        raise TypeError(
            "picture must be a callable picture(messages) that returns a PIL "
            f"Image or JPEG bytes, not {type(picture).__name__}"
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
    app.extensions[EXTENSION] = AppState(
        source or sqrt_demo, answer or answer_page.made_up, picture or mjpeg.chart
    )

    app.register_blueprint(views.bp)
    app.register_blueprint(answer_page.bp)
    if feed_enabled(app.config):
        app.register_blueprint(feed_views.bp)
    app.register_error_handler(HTTPException, plain_error)
    guard.init_app(app)
    return app


def plain_error(error):
    """Any HTTP error as one line of text that a person or a script can read."""
    return (
        f"{error.description}\n",
        error.code,
        {"Content-Type": "text/plain; charset=utf-8"},
    )
