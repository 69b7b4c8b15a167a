"""One reader per process: the Redis Stream read once, framed once, shared.

A :class:`Window` runs one thread that reads new entries of one Redis Stream
(``XREAD BLOCK``), frames each as SSE bytes, and keeps the latest of them in
memory. Every SSE stream of the process reads that window from its own
position, and writes everything new since that position in one write. A
stream that is behind the window (it fell behind, or resumed with an older
``Last-Event-ID``) reads what it missed from Redis by entry id (``XRANGE``)
and then joins the window: nothing is lost, nothing repeated.

A lost Redis connection is transient: the reader retries from its last
entry id, with backoff, and the streams keep waiting (and sending
keep-alives). Only an error that retrying cannot fix ends them.
"""

import json
import os
import threading
import time
from bisect import bisect_right

from .framing import SSE_KEEPALIVE, Unsendable, sse_event
from .streams import IDLE_WAIT

# the reader wakes this often when nothing is published, so a stopped
# process's reader notices soon
BLOCK_MS = 1000
READ_COUNT = 1000
# after a read that found entries, the reader waits this long before the
# next, so entries published closer together go out in one write: at 100
# messages a second a stream writes 20 times a second, not 100, and every
# stream of the process wakes that much less often
GATHER = 0.05
# the window keeps at most this many entries, and about this many bytes
WINDOW_ENTRIES = 10_000
WINDOW_BYTES = 16 * 2**20
# one write of a stream carries at most this many entries; a stream further
# behind writes again at once
MAX_WRITE = 1000
# backoff after a lost Redis connection: first wait, then doubling up to this
RETRY_FIRST = 0.05
RETRY_MOST = 2.0


def following():
    """The comment a stream starts with once nothing published can slip past
    it; it names the process that serves it."""
    # no blank line after it: only an event ends a block (see framing)
    return f": following, served by process {os.getpid()}\n".encode()


class Windows:
    """This process's windows, one per (Redis URL, stream key), each started
    on first use; ``connect(url)`` gives a Redis client."""

    def __init__(self):
        self._windows = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, url, key, connect):
        """The window on ``key`` at ``url``; a failed one is replaced."""
        with self._lock:
            if self._pid != os.getpid():
                # a forked worker: the parent's reader threads did not come along
                self._windows.clear()
                self._pid = os.getpid()
            found = self._windows.get((url, key))
            if found is None or found.error:
                found = self._windows[url, key] = Window(lambda: connect(url), key)
            return found


class WindowFailed(Exception):
    """The reader met an error that retrying cannot fix."""


def parse_id(text):
    """A Redis entry id such as ``"1700000000000-3"`` as a tuple of two ints."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def format_id(entry_id):
    """The tuple from :func:`parse_id` as Redis writes it."""
    return f"{entry_id[0]}-{entry_id[1]}"


def frame(entry_id, fields):
    """One Redis entry as SSE bytes; an entry SSE cannot carry becomes a comment."""
    try:
        return sse_event(json.loads(fields["message"]), entry_id).encode()
    except (Unsendable, KeyError, ValueError) as error:
        # not an event: the stream goes on, and the page's count skips it
        reason = str(error).replace("\n", " ").replace("\r", " ")
        return f": entry {entry_id} could not be sent: {reason}\n\n".encode()


def transient(error):
    """Whether retrying may cure ``error``: Redis away or restarting."""
    import redis

    return isinstance(
        error, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError
    )


class Window:
    """The latest entries of the Redis Stream ``key``, framed, for every stream
    of this process; ``connect()`` gives a Redis client."""

    def __init__(self, connect, key):
        self.key = key
        self.error = None
        self._reader = connect()
        self._history = connect()
        self._changed = threading.Condition()
        # entries after `floor` that the reader has read are all in the
        # window; None until the reader knows where the stream ends
        self.floor = None
        self._ids, self._frames = [], []
        self._bytes = 0
        self._joined = {}  # (first, last) index -> bytes, for the latest entries
        self._thread = threading.Thread(
            target=self._read, name=f"livestream reader {key}", daemon=True
        )
        self._thread.start()

    def __len__(self):
        return len(self._ids)

    # the reader

    def _read(self):
        delay = RETRY_FIRST
        while True:
            try:
                if self.floor is None:
                    newest = self._reader.xrevrange(self.key, count=1)
                    with self._changed:
                        self.floor = parse_id(newest[0][0]) if newest else (0, 0)
                        self._changed.notify_all()
                last = self._ids[-1] if self._ids else self.floor
                answer = self._reader.xread(
                    {self.key: format_id(last)}, block=BLOCK_MS, count=READ_COUNT
                )
            except Exception as error:
                if not transient(error):
                    with self._changed:
                        self.error = f"{type(error).__name__}: {error}"[:300]
                        self._changed.notify_all()
                    return
                # Redis is away: try again from the same id, less often
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MOST)
                continue
            delay = RETRY_FIRST
            if answer:
                self._append(answer[0][1])
                time.sleep(GATHER)

    def _append(self, entries):
        framed = [(parse_id(entry_id), frame(entry_id, f)) for entry_id, f in entries]
        with self._changed:
            for entry_id, data in framed:
                self._ids.append(entry_id)
                self._frames.append(data)
                self._bytes += len(data)
            if len(self._ids) > WINDOW_ENTRIES or self._bytes > WINDOW_BYTES:
                self._trim()
            self._joined.clear()
            self._changed.notify_all()

    def _trim(self):
        # drop a quarter at once, so trimming is rare
        drop = max(len(self._ids) // 4, len(self._ids) - WINDOW_ENTRIES)
        self.floor = self._ids[drop - 1]
        self._bytes -= sum(map(len, self._frames[:drop]))
        del self._ids[:drop], self._frames[:drop]

    # the streams

    def stream(self, after, keepalive, gone):
        """Yield SSE bytes for every entry after ``after``, forever.

        ``after`` is an entry id tuple, or None for what comes next. The
        first piece is :func:`following`, once the stream knows where it
        starts. A keep-alive goes out after ``keepalive`` quiet seconds; it
        ends when ``gone()`` says the client went away.
        """
        last, announced = after, after is not None
        if announced:
            yield following()
        quiet = looked = time.monotonic()
        delay = RETRY_FIRST
        while True:
            try:
                data, last = self._take(last)
                delay = RETRY_FIRST
            except Exception as error:
                if not transient(error):
                    raise
                data = b""
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MOST)
            if last is not None and not announced:
                announced = True
                yield following()
            now = time.monotonic()
            if data:
                yield data
                quiet = now
            if now - looked >= IDLE_WAIT or not data:
                looked = now
                if gone():
                    return
            if not data and now - quiet >= keepalive:
                quiet = now
                yield SSE_KEEPALIVE.encode()

    def _take(self, last):
        """What is new after ``last``, and the new last id; waits a while."""
        deadline = time.monotonic() + IDLE_WAIT
        with self._changed:
            while True:
                if self.error:
                    raise WindowFailed(self.error)
                if self.floor is not None:
                    if last is None:
                        last = self._ids[-1] if self._ids else self.floor
                    if last < self.floor:
                        break  # behind the window: read Redis, outside the lock
                    first = bisect_right(self._ids, last)
                    if first < len(self._ids):
                        end = min(len(self._ids), first + MAX_WRITE)
                        data = self._joined.get((first, end))
                        if data is None:
                            data = b"".join(self._frames[first:end])
                            self._joined[first, end] = data
                        return data, self._ids[end - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b"", last
                self._changed.wait(remaining)
        return self._catch_up(last)

    def _catch_up(self, last):
        entries = self._history.xrange(
            self.key, min=f"({format_id(last)}", max="+", count=MAX_WRITE
        )
        if not entries:
            # Redis has nothing after `last` (it restarted empty, or trimmed):
            # whatever is left is in the window
            return b"", max(last, self.floor)
        data = b"".join(frame(entry_id, fields) for entry_id, fields in entries)
        return data, parse_id(entries[-1][0])
