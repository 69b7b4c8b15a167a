"""Message sources: generators that a stream view runs, one per request.

A source is called as ``source(count, interval)``. One that also takes
``start`` can begin part-way, which is how a Server-Sent Events stream
resumes after a reconnect; any other is run from the beginning and its first
``start`` messages are skipped.
"""

import inspect
import time
from math import sqrt

from .framing import described


def paced(make, count, interval, start=0):
    """``make(i)`` for each ``i`` from ``start`` up to ``count``, one every
    ``interval`` seconds."""
    for i in range(start, count):
        yield make(i)
        # no sleep after the last message: the stream should end as soon as it can
        if interval and i < count - 1:
            time.sleep(interval)


def sqrt_demo(count=500, interval=1.0, start=0):
    """The classic answer's demo: ``sqrt(i)`` for each ``i``, one every ``interval``."""
    return paced(sqrt, count, interval, start)


def numbered(count, interval, start=0):
    """``message 0``, ``message 1``, ...: the same length whatever the technique."""
    return paced("message {}".format, count, interval, start)


def numbers(count, interval, start=0):
    """0, 1, 2, ...: so that losses and order show."""
    return paced(int, count, interval, start)


def ticks(count, interval, start=0):
    """``tick 0``, ``tick 1``, ...: lines of plain text, for raw responses."""
    return paced("tick {}\n".format, count, interval, start)


def run_source(source, count, interval, start=0):
    """The messages of ``source`` from message number ``start`` on.

    The source is called when the first message is asked for; one that
    returns something other than an iterable (None, 42) fails then, with a
    TypeError that says what it returned.
    """
    if start == 0:
        return _checked(source, count, interval)
    if takes_start(source):
        return _checked(source, count, interval, start=start)
    return _skip(_checked(source, count, interval), start)


def _checked(source, *args, **kwargs):
    returned = source(*args, **kwargs)
    try:
        messages = iter(returned)
    except TypeError:
        raise TypeError(
            "a source must return an iterable of messages, such as a generator; "
            f"{getattr(source, '__name__', 'the source')} returned "
            f"{described(returned)}"
        ) from None
    # yield from closes the source's generator when this one is closed
    yield from messages


def takes_start(source):
    """Whether ``source`` accepts a ``start`` keyword."""
    try:
        parameters = inspect.signature(source).parameters.values()
    except (TypeError, ValueError):  # some callables have no signature
        return False
    return any(
        p.name == "start" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def _skip(messages, how_many):
    iterator = iter(messages)
    try:
        for number, message in enumerate(iterator):
            if number >= how_many:
                yield message
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
