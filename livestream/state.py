"""What an app made by ``create_app()`` keeps between requests."""

import threading

from flask import current_app

from .window import Windows

# the key of the app's state in ``app.extensions``
EXTENSION = "livestream"


class AppState:
    """An app's source, the generator of its streamed answers, what draws its
    pictures, its open streams, and its windows on the live feed."""

    def __init__(self, source, answer, picture):
        self.source = source
        self.answer = answer
        self.picture = picture
        self.open_streams = OpenStreams()
        self.windows = Windows()

    @classmethod
    def of(cls, app=None):
        """The app's state, or None for an app not made by ``create_app()``."""
        app = app or current_app
        return getattr(app, "extensions", {}).get(EXTENSION)


class OpenStreams:
    """How many streams are open now; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0

    def __len__(self):
        return self._count

    def add(self, change):
        with self._lock:
            self._count += change
