"""How one message becomes text on the wire, for each kind of stream.

A message is a ``str`` or a JSON-serialisable object. Every technique shows
the same text for the same message: a string as it is, anything else as its
JSON text. A message that a format cannot carry exactly is refused with
:class:`Unsendable` rather than sent damaged:

============  ==========================================================
format        refuses
============  ==========================================================
plain lines   a line break (it would split the message), a lone surrogate
NDJSON        nothing: JSON escapes every character
HTML          NUL (parsers turn it into U+FFFD), a lone surrogate
SSE           a carriage return (it arrives as "\\n"), a lone surrogate
SSE of HTML   NUL, a lone surrogate: the HTML's refusals (htmx's page)
WebSocket     a lone surrogate (a text message is UTF-8)
============  ==========================================================

Everywhere: an object JSON cannot encode, and NaN or infinity, which are not
JSON at all.
"""

import json
import re

from markupsafe import Markup, escape

# any of these ends a line in plain text and in SSE
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class Unsendable(ValueError):
    """A message that a stream's format cannot carry exactly."""

    def __init__(self, format_name, problem, message):
        super().__init__(f"{format_name} cannot carry {problem}: {described(message)}")


def described(message, limit=60):
    """``repr(message)`` cut to ``limit`` characters, or its type when even
    ``repr()`` fails (an int of 5,000 digits, a dict nested 100,000 deep)."""
    try:
        shown = repr(message)
    except Exception:
        return f"<a {type(message).__name__} that repr() cannot show>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _json(message, format_name):
    try:
        return json.dumps(message, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        problem = f"this message ({type(error).__name__}: {str(error)[:100]})"
        raise Unsendable(format_name, problem, message) from None


def as_text(message, format_name="this stream"):
    """The text a page shows for ``message``."""
    if isinstance(message, str):
        return message
    return _json(message, format_name)


def _unicode_text(message, format_name):
    text = as_text(message, format_name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Unsendable(format_name, "a lone surrogate", message) from None
    return text


def plain_line(message):
    """The classic answer's framing: the text and a newline.

    A line break in a message would split it into several here: that is
    refused, and NDJSON is the framing that carries it.
    """
    text = _unicode_text(message, "plain lines")
    if _LINE_BREAK.search(text):
        raise Unsendable("plain lines", "a line break (use NDJSON)", message)
    return f"{text}\n"


def ndjson_line(message):
    """One JSON value per line; JSON escapes newlines, so a message stays whole."""
    return _json(message, "NDJSON") + "\n"


def html_text(message):
    """The text of ``message``, escaped for HTML.

    HTML parsers turn a raw carriage return into a newline; written as a
    character reference it survives, so the frame shows the message exactly.
    """
    text = _unicode_text(message, "HTML")
    if "\0" in text:
        raise Unsendable("HTML", "a NUL character", message)
    return Markup(str(escape(text)).replace("\r", "&#13;"))


def ws_text(message):
    """One WebSocket text message: the message's text, nothing around it."""
    return _unicode_text(message, "WebSocket")


def framed(batches, frame):
    """Each batch of messages as one piece of text, framed by ``frame``.

    A message that ``frame`` refuses, or fails on, ends it, after the
    messages before it.
    """
    for batch in batches:
        pieces = []
        try:
            for message in batch:
                pieces.append(frame(message))
        except Exception:
            if pieces:
                yield "".join(pieces)
            raise
        yield "".join(pieces)


_ITEM = Markup('<li class="message">%s</li>')


def html_item(message):
    """One message as a ``.message`` list item, on a line of its own."""
    return _ITEM % html_text(message) + "\n"


# Server-Sent Events. A line break ends a field, so a message with line breaks
# goes out as one data: line per line; the browser joins them with "\n".
#
# Only an event ends with a blank line. The spec dispatches a block without
# data as nothing, but httpx-sse yields an empty message for a block that
# holds a retry: field, or that follows any id (it never forgets the last id),
# so a retry: or a keep-alive ended by a blank line would reach its users as
# a message nobody sent. Alone on their lines they join the next event's
# block, where every client applies the retry and skips the comments.

SSE_END = "event: end\ndata: \n\n"
SSE_KEEPALIVE = ": keep-alive\n"


def sse_event(message, event_id):
    """One event: its id, then a data: line per line of the message's text."""
    text = _unicode_text(message, "SSE")
    if "\r" in text:
        raise Unsendable("SSE", "a carriage return (send \\n line breaks)", message)
    return _sse_message(text, event_id)


def sse_failure(why):
    """The last event of a stream whose source failed (not "error": that name is
    EventSource's own, for a broken connection)."""
    return f"event: failure\n{_sse_data(why)}\n"


def sse_retry(milliseconds):
    """Tell the browser how long to wait before it reconnects: a line that
    takes effect as it is read, and joins the next event's block."""
    return f"retry: {milliseconds}\n"


def _sse_message(text, event_id):
    return f"id: {event_id}\n{_sse_data(text)}\n"


def _sse_data(text):
    # str.replace, not a split into lines: a message of a million line breaks
    # would make a million objects at once
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "data: " + text.replace("\n", "\ndata: ") + "\n"


# SSE of HTML, for htmx's SSE extension (the /htmx page). Each event's data is
# HTML that htmx swaps into the page: the message's list item, which the page
# appends to its log, and out-of-band swaps (hx-swap-oob) that set #latest and
# #count, the readout's ids (templates/htmx.html). The message is escaped here
# like the iframe's, so nothing in it becomes markup, and its carriage returns
# are character references, so the SSE framing never meets one.

# once the log holds the page's ``keep`` items, each new one removes the oldest
# (htmx makes the out-of-band swaps before it appends the item)
_DROP_OLDEST = Markup(
    '<span hx-swap-oob="delete:#output > .message:first-child"></span>'
)
# the end (the page's sse-close) and the answer to Stop leave the button disabled
_STOP_DISABLED = Markup(
    '<button id="stop" type="button" disabled hx-swap-oob="true">Stop</button>'
)


def _into(target, content):
    """An out-of-band swap that makes ``content`` all of ``target``'s content."""
    return Markup('<span hx-swap-oob="innerHTML:%s">%s</span>') % (target, content)


def htmx_event(message, event_id, keep):
    """One event for the htmx page: its id, and the message's list item with
    the swaps that set #latest to it and #count to ``event_id + 1`` (ids
    number the messages from 0), and that keep the log to ``keep`` items."""
    text = html_text(message)
    shown = event_id + 1
    # the item alone, without html_item's newline: htmx would append that as
    # a text node beside it, which deleting the oldest item leaves behind
    html = _ITEM % text + _into("#latest", text) + _into("#count", shown)
    if shown > keep:
        html += _DROP_OLDEST
    return _sse_message(html, event_id)


def htmx_ended(text):
    """What ends the htmx page's readout: ``text`` in #latest, Stop disabled.

    ``text`` may quote what a stream refused: what HTML cannot carry (NUL,
    a lone surrogate) is replaced rather than refused again.
    """
    text = text.encode("utf-8", "replace").decode().replace("\0", "\ufffd")
    return _into("#latest", html_text(text)) + _STOP_DISABLED


def htmx_end(error=None):
    """The htmx page's last event, named end: the page closes its stream on
    it (``sse-close="end"``) and shows ``Done``, or ``Error: <error>``."""
    ended = htmx_ended(f"Error: {error}" if error else "Done")
    return f"event: end\n{_sse_data(ended)}\n"
