"""How one message becomes text on the wire, for each kind of stream.

A message is a ``str`` or a JSON-serialisable object. Every technique shows
the same text for the same message: a string as it is, anything else as its
JSON text.
"""

import json
import re

from markupsafe import Markup, escape


def as_text(message):
    """The text a page shows for ``message``."""
    if isinstance(message, str):
        return message
    return json.dumps(message)


def plain_line(message):
    """The classic answer's framing: the text and a newline.

    A message that contains a newline falls apart into several lines here;
    that flaw is what :func:`ndjson_line` fixes.
    """
    return f"{as_text(message)}\n"


def ndjson_line(message):
    """One JSON value per line; JSON escapes newlines, so a message stays whole."""
    return json.dumps(message) + "\n"


def html_text(message):
    """The text of ``message``, escaped for HTML.

    HTML parsers turn a raw carriage return into a newline; written as a
    character reference it survives, so the frame shows the message exactly.
    """
    return Markup(str(escape(as_text(message))).replace("\r", "&#13;"))


# Server-Sent Events. A line break ends a field, so a message with line breaks
# goes out as one data: line per line; the browser joins them with "\n". That
# makes "\r\n" and a lone "\r" arrive as "\n": the format cannot carry them.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

SSE_END = "event: end\ndata: \n\n"
SSE_KEEPALIVE = ": keep-alive\n\n"


def sse_event(message, event_id):
    """One event: its id, then a data: line per line of the message's text."""
    return f"id: {event_id}\n{_sse_data(as_text(message))}\n"


def sse_failure(why):
    """The last event of a stream whose source failed (not "error": that name is
    EventSource's own, for a broken connection)."""
    return f"event: failure\n{_sse_data(why)}\n"


def sse_retry(milliseconds):
    """Tell the browser how long to wait before it reconnects."""
    return f"retry: {milliseconds}\n\n"


def _sse_data(text):
    return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))
