"""Show data that a Flask view streams, in the browser, as it arrives."""

from .app import create_app
from .feed import publish
from .inline import display
from .server import LiveServer, serve

__all__ = ["LiveServer", "create_app", "display", "publish", "serve"]
