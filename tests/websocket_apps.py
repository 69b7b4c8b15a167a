"""Apps for the WebSocket tests that gunicorn serves too: gunicorn imports an
app by name (``tests.websocket_apps:sized_app(total=8000000)``), so they live at
module level rather than inside a test."""

import threading

from livestream import create_app


def sized(i, size):
    """Message ``i``: ``size`` ASCII characters that differ from every other
    message's, so a frame cut short, or a piece of another, shows."""
    head = f"{i:08d}:"
    body = (chr(ord("a") + i % 26) * size)[: size - len(head)]
    return head + body


def sized_app(total, **config):
    """An app whose stream is ``total`` characters in ``?count=`` messages of
    equal size, sent as fast as the client reads them."""

    def source(count, interval):
        return (sized(i, total // count) for i in range(count))

    return create_app(source, TESTING=True, **config)


def quiet_app(**config):
    """An app whose stream sends one message, then waits (up to a minute) with
    the connection open: what the client sends is all that happens."""

    def source(count, interval):
        yield "ready"
        threading.Event().wait(60)

    return create_app(source, TESTING=True, **config)
