"""Flask-SSE as its documentation deploys it: the peer that
``livestream-fanout`` measures beside livestream.

Its docs: register the ``sse`` blueprint at ``/stream``, set ``REDIS_URL``,
publish with ``sse.publish(...)`` inside an app context, and serve with
gunicorn's ``gevent`` workers. Each open stream subscribes to Redis pub/sub on
a connection of its own.
"""

import os

from flask import Flask


def create_app(redis_url=None):
    """The peer app on ``redis_url``, by default ``$LIVESTREAM_REDIS_URL``."""
    from flask_sse import sse

    app = Flask(__name__)
    app.config["REDIS_URL"] = redis_url or os.environ["LIVESTREAM_REDIS_URL"]
    app.register_blueprint(sse, url_prefix="/stream")

    @app.get("/status")
    def status():
        # not Flask-SSE's: only so the benchmark can tell that it is up
        return {"pid": os.getpid()}

    return app


def publish(app, message):
    """Publish ``message`` the documented way, on the default channel."""
    from flask_sse import sse

    with app.app_context():
        sse.publish(message)
