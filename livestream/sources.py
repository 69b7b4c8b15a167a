"""Message sources: generators that a stream view runs, one per request."""

import time
from math import sqrt


def sqrt_demo(count=500, interval=1.0):
    """The classic answer's demo: ``sqrt(i)`` for each ``i``, one every ``interval``."""
    for i in range(count):
        yield sqrt(i)
        # no sleep after the last message: the stream should end as soon as it can
        if i < count - 1:
            time.sleep(interval)
