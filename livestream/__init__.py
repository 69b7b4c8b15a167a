"""Show data that a Flask view streams, in the browser, as it arrives."""

from .app import create_app
from .feed import publish
from .server import LiveServer, display, serve

__all__ = ["LiveServer", "create_app", "display", "publish", "serve"]
