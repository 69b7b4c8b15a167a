"""One reader per process: the Redis Stream read once, framed once, shared.

A :class:`Window` runs one thread that reads new entries of one Redis Stream
(``XREAD BLOCK``), frames each as SSE bytes, and keeps the latest of them in
memory. Every SSE stream of the process reads that window from its own
position, and writes everything new since that position in one write. A
stream that is behind the window (it fell behind, or resumed with an older
``Last-Event-ID``) reads what it missed from Redis by entry id (``XRANGE``)
and then joins the window: nothing is lost, nothing repeated.

A window lives as long as streams follow it: it starts with its topic's
first stream, and ``idle_close`` seconds after its last stream leaves its
thread ends and both its Redis connections are closed. A process follows at
most ``max_topics`` topics at once (:class:`Windows`).

An entry larger than ``max_bytes`` is never kept or framed: every stream gets
a comment that names the limit instead, so one huge entry costs a process a
few transient copies (the reader's, and those of the first streams that read
it from Redis to catch up, CATCH_UPS_AT_ONCE at most), not one per stream.

A lost Redis connection is transient: the reader retries from its last
entry id, with backoff, and the streams keep waiting (and sending
keep-alives). Only an error that retrying cannot fix ends them.
"""

import json
import math
import os
import threading
import time
from bisect import bisect_right, insort

from .broadcast import FAILED, GONE, Piece
from .framing import SSE_KEEPALIVE, Unsendable, sse_event
from .streams import IDLE_WAIT

# the reader wakes this often when nothing is published, so a stopped
# process's reader notices soon
BLOCK_MS = 1000
# one read asks for at most READ_COUNT entries and, going by the size of the
# entries read last, about READ_BYTES: a feed of large entries is read a few
# at a time, not a thousand at once
READ_COUNT = 1000
READ_BYTES = 4 * 2**20
# after a read that found entries, the reader waits this long before the
# next, so entries published closer together go out in one write: at 100
# messages a second a stream writes 20 times a second, not 100, and every
# stream of the process wakes that much less often
GATHER = 0.05
# the window keeps at most this many entries, and about this many bytes
WINDOW_ENTRIES = 10_000
WINDOW_BYTES = 16 * 2**20
# one write of a stream carries at most this many entries, and about this
# many bytes (a single larger entry goes alone); a stream further behind
# writes again at once. Streams at one position share one write's bytes;
# each position costs one write's worth at most
MAX_WRITE = 1000
WRITE_BYTES = 2**20
# the joined writes a window keeps between two reads, for the streams at the
# same position, in bytes: a stream that walks the window alone would
# otherwise leave a copy of all of it behind, and streams at many positions
# a write's worth each
JOINED_BYTES = 4 * WRITE_BYTES
# the largest entry a stream is sent, in bytes of its JSON text: a quarter of
# the window at most, so the window always holds a few of the largest
MAX_ENTRY_BYTES = 2**20
# seconds a topic's reader lives on after its last stream leaves: a page that
# reloads, or a browser that reconnects, finds it still there
IDLE_CLOSE = 5.0
# topics one process follows at once; a stream of another gets 503
MAX_TOPICS = 100
# streams of a process that read Redis to catch up at the same time; others
# wait their turn (watching their client meanwhile). Each holds at most
# about WINDOW_BYTES of entries at the limit, or one larger entry
CATCH_UPS_AT_ONCE = 4
# a window remembers this many of the latest entries that were too large
KNOWN_OVERSIZED = 1000
# backoff after a lost Redis connection: first wait, then doubling up to this
RETRY_FIRST = 0.05
RETRY_MOST = 2.0
# the keep-alive parked streams are sent, framed once for all of them
KEEPALIVE = Piece([SSE_KEEPALIVE.encode()], None)
# what _take() gives a stream it parked in the broadcast
PARKED = object()


def following():
    """The comment a stream starts with once nothing published can slip past
    it; it names the process that serves it."""
    # no blank line after it: only an event ends a block (see framing)
    return f": following, served by process {os.getpid()}\n".encode()


class TooManyTopics(Exception):
    """The process follows as many topics as it may already."""


class Windows:
    """This process's windows, one per (Redis URL, stream key) that streams
    follow now; ``connect(url)`` gives a Redis client."""

    def __init__(self):
        self._windows = {}
        self._lock = threading.Lock()
        self._forked()

    def _forked(self):
        self._pid = os.getpid()
        # one for the whole process, so that memory is bounded however many
        # topics there are
        self._catch_ups = threading.BoundedSemaphore(CATCH_UPS_AT_ONCE)

    def follow(
        self,
        url,
        key,
        connect,
        *,
        idle_close=IDLE_CLOSE,
        max_topics=MAX_TOPICS,
        max_bytes=MAX_ENTRY_BYTES,
    ):
        """The window on ``key`` at ``url``, with one more stream following
        it: the caller calls its ``leave()`` when that stream ends.

        A window that closed or failed is replaced. A new window past
        ``max_topics`` first closes one that no stream follows, and without
        one raises :class:`TooManyTopics`.
        """
        with self._lock:
            if self._pid != os.getpid():
                # a forked worker: the parent's reader threads did not come along
                self._windows.clear()
                self._forked()
            found = self._windows.get((url, key))
            if found is not None and found.join():
                return found
            self._windows.pop((url, key), None)
            if len(self._windows) >= max_topics and not self._close_an_idle_one():
                raise TooManyTopics(
                    f"this process follows {len(self._windows)} topics already"
                )
            # `closed` runs on the reader's thread, which may end before the
            # constructor returns: the window hands itself over, and
            # `_forget` waits for this lock before it looks
            window = self._windows[url, key] = Window(
                lambda: connect(url),
                key,
                idle_close=idle_close,
                max_bytes=max_bytes,
                catch_ups=self._catch_ups,
                closed=lambda closing: self._forget((url, key), closing),
            )
            return window

    def _close_an_idle_one(self):
        for name, window in self._windows.items():
            if window.retire():
                del self._windows[name]
                return True
        return False

    def _forget(self, name, window):
        with self._lock:
            if self._windows.get(name) is window:
                del self._windows[name]


class WindowFailed(Exception):
    """The reader met an error that retrying cannot fix."""


def parse_id(text):
    """A Redis entry id such as ``"1700000000000-3"`` as a tuple of two ints."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def format_id(entry_id):
    """The tuple from :func:`parse_id` as Redis writes it."""
    return f"{entry_id[0]}-{entry_id[1]}"


def oversized(fields, max_bytes):
    """Whether an entry's message is larger than ``max_bytes`` in UTF-8."""
    message = fields.get("message")
    if not isinstance(message, str):
        return False
    # a str has at least as many bytes as characters: a huge one is known to
    # be too large before it is copied even once; publish()'s JSON is ASCII
    return len(message) > max_bytes or (
        not message.isascii() and len(message.encode()) > max_bytes
    )


def too_large(entry_id, max_bytes):
    """The comment a stream gets instead of an entry larger than ``max_bytes``."""
    return (
        f": entry {entry_id} was not sent: it is larger than "
        f"FEED_MAX_ENTRY_BYTES ({max_bytes} bytes)\n"
    ).encode()


def frame(entry_id, fields, max_bytes=MAX_ENTRY_BYTES):
    """One Redis entry as SSE bytes; an entry SSE cannot carry, or larger than
    ``max_bytes``, becomes a comment."""
    if oversized(fields, max_bytes):
        return too_large(entry_id, max_bytes)
    try:
        return sse_event(json.loads(fields["message"]), entry_id).encode()
    except (Unsendable, KeyError, ValueError) as error:
        # not an event: the stream goes on, and the page's count skips it.
        # A comment line alone, joining the next event: a block without one
        # would be an empty message to httpx-sse (see framing)
        reason = str(error).replace("\n", " ").replace("\r", " ")
        return f": entry {entry_id} could not be sent: {reason}\n".encode()


def transient(error):
    """Whether retrying may cure ``error``: Redis away or restarting."""
    import redis

    return isinstance(
        error, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError
    )


class Window:
    """The latest entries of the Redis Stream ``key``, framed, for the streams
    of this process that follow it; ``connect()`` gives a Redis client.

    It starts with one stream following it (the one that asked for it). When
    none has for ``idle_close`` seconds, its thread ends, its connections are
    closed, and it calls ``closed(window)``. Entries larger than ``max_bytes`` are
    sent as a comment; ``catch_ups`` is the semaphore that streams reading
    Redis hold (see CATCH_UPS_AT_ONCE).
    """

    def __init__(
        self,
        connect,
        key,
        *,
        idle_close=IDLE_CLOSE,
        max_bytes=MAX_ENTRY_BYTES,
        catch_ups=None,
        closed=None,
    ):
        self.key = key
        self.idle_close = idle_close
        self.max_bytes = max_bytes
        self.error = None
        self.closed = False
        self._catch_ups = catch_ups or threading.BoundedSemaphore(CATCH_UPS_AT_ONCE)
        self._on_close = closed or (lambda window: None)
        # a read from Redis brings at most about WINDOW_BYTES of entries at
        # the limit, however far behind the stream is
        self._catch_up_count = max(1, min(MAX_WRITE, WINDOW_BYTES // max_bytes))
        self._reader = connect()
        self._history = connect()
        self._changed = threading.Condition()
        self._streams, self._idle_since = 1, None
        # entries after `floor` that the reader has read are all in the
        # window; None until the reader knows where the stream ends
        self.floor = None
        self._ids, self._frames = [], []
        self._bytes = 0
        # first index -> (bytes, last id): one write, for every stream at that
        # position until the next read
        self._joined = {}
        self._joined_bytes = 0  # of the joined copies (a lone frame is shared)
        # the streams parked at the head of the window, sent each new piece
        # by the reader (livestream.broadcast); swept for keep-alives this
        # often, the shortest keep-alive of any of them
        self._spots = set()
        self._sweep_every = BLOCK_MS / 1000
        self._swept = time.monotonic()
        # the latest entries found too large, which a catch-up does not read
        # again: one huge entry is read from Redis a few times, not per stream
        self._oversized = []
        self._thread = threading.Thread(
            target=self._run, name=f"livestream reader {key}", daemon=True
        )
        self._thread.start()

    def __len__(self):
        return len(self._ids)

    # who follows it

    def join(self):
        """Count one more stream, unless the window has closed or failed."""
        with self._changed:
            if self.closed or self.error:
                return False
            self._streams += 1
            return True

    def leave(self):
        """Count one stream fewer; the last one starts the idle clock."""
        with self._changed:
            self._streams -= 1
            if self._streams == 0:
                self._idle_since = time.monotonic()

    def retire(self):
        """Close now if no stream follows; whether it did."""
        with self._changed:
            if self._streams == 0:
                self.closed = True
            return self.closed

    def _idle_left(self):
        """Seconds until the window closes if nobody joins; None while a
        stream follows it. Closes it when the time is up."""
        with self._changed:
            if self._streams:
                return None
            left = self._idle_since + self.idle_close - time.monotonic()
            if left <= 0:
                self.closed = True
            return 0.0 if self.closed else left

    # the reader

    def _run(self):
        try:
            self._read()
        finally:
            self._reader.close()
            self._history.close()
            self._on_close(self)

    def _read(self):
        delay = RETRY_FIRST
        # until the first read says how large entries are, as if the largest
        count = max(1, READ_BYTES // self.max_bytes)
        while (idle := self._idle_left()) != 0.0:
            self._sweep()
            # an idle window wakes when its time is up, not a whole block
            # later; a followed one in time for the next keep-alive
            block = min(BLOCK_MS, math.ceil(self._sweep_every * 1000))
            if idle is not None:
                block = min(block, math.ceil(idle * 1000))
            try:
                if self.floor is None:
                    newest = self._reader.xrevrange(self.key, count=1)
                    with self._changed:
                        self.floor = parse_id(newest[0][0]) if newest else (0, 0)
                        self._changed.notify_all()
                last = self._ids[-1] if self._ids else self.floor
                answer = self._reader.xread(
                    {self.key: format_id(last)}, block=block, count=count
                )
            except Exception as error:
                if not transient(error):
                    with self._changed:
                        self.error = f"{type(error).__name__}: {error}"[:300]
                        for spot in self._spots:
                            spot.fail()
                        self._spots.clear()
                        self._changed.notify_all()
                    return
                # Redis is away: try again from the same id, less often
                time.sleep(delay if idle is None else min(delay, idle))
                delay = min(delay * 2, RETRY_MOST)
                continue
            delay = RETRY_FIRST
            if answer:
                size = self._append(answer[0][1])
                count = min(READ_COUNT, max(1, READ_BYTES * len(answer[0][1]) // size))
                time.sleep(GATHER)

    def _append(self, entries):
        """Frame ``entries`` into the window; how many bytes they took."""
        framed = [
            (parse_id(entry_id), self._frame(entry_id, f)) for entry_id, f in entries
        ]
        with self._changed:
            for entry_id, data in framed:
                self._ids.append(entry_id)
                self._frames.append(data)
                self._bytes += len(data)
            if len(self._ids) > WINDOW_ENTRIES or self._bytes > WINDOW_BYTES:
                self._trim()
            self._joined.clear()
            self._joined_bytes = 0
            if self._spots:
                # one piece, framed once, for every parked stream
                piece = Piece([data for _, data in framed], framed[-1][0])
                self._send(piece)
            self._changed.notify_all()
        return max(1, sum(len(data) for _, data in framed))

    def _send(self, piece):
        """Offer ``piece`` to every parked stream (under the lock); a stream
        that leaves the broadcast is woken by its bell."""
        now = time.monotonic()
        left = [spot for spot in self._spots if not spot.offer(piece, now)]
        self._spots.difference_update(left)

    def _sweep(self):
        """A keep-alive for each parked stream that has been quiet long enough."""
        now = time.monotonic()
        if now - self._swept < self._sweep_every:
            return
        self._swept = now
        with self._changed:
            left = [
                spot
                for spot in self._spots
                if now - spot.wrote >= spot.keepalive and not spot.offer(KEEPALIVE, now)
            ]
            self._spots.difference_update(left)

    def _frame(self, entry_id, fields):
        """:func:`frame`, remembering an entry that is too large."""
        if not oversized(fields, self.max_bytes):
            return frame(entry_id, fields, self.max_bytes)
        with self._changed:
            if parse_id(entry_id) not in self._oversized:
                insort(self._oversized, parse_id(entry_id))
                del self._oversized[:-KNOWN_OVERSIZED]
        return too_large(entry_id, self.max_bytes)

    def _trim(self):
        # drop a quarter at once, so trimming is rare; at least one entry, so
        # the floor is always an entry that left the window
        drop = max(len(self._ids) // 4, len(self._ids) - WINDOW_ENTRIES, 1)
        self.floor = self._ids[drop - 1]
        self._bytes -= sum(map(len, self._frames[:drop]))
        del self._ids[:drop], self._frames[:drop]

    # the streams

    def stream(self, after, keepalive, gone, spot=None):
        """Yield SSE bytes for every entry after ``after``, forever.

        ``after`` is an entry id tuple, or None for what comes next. The
        first piece is :func:`following`, once the stream knows where it
        starts. A keep-alive goes out after ``keepalive`` quiet seconds; it
        ends when ``gone()`` says the client went away.

        Given a :class:`~livestream.broadcast.Spot`, the stream parks there
        whenever it has caught up: the reader sends it what comes next, and
        this generator sleeps until the client leaves or the stream falls
        behind.
        """
        last, announced = after, after is not None
        if announced:
            yield following()
        quiet = looked = time.monotonic()
        delay = RETRY_FIRST
        while True:
            try:
                data, last = self._take(last, spot if announced else None)
                delay = RETRY_FIRST
            except Exception as error:
                if not transient(error):
                    raise
                data = b""
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MOST)
            if data is PARKED:
                try:
                    state = spot.wait(self._changed)
                finally:  # also when the server kills this thread or greenlet
                    with self._changed:
                        self._spots.discard(spot)
                if state == GONE:
                    return
                if state == FAILED:
                    raise WindowFailed(self.error)
                last = spot.last  # BEHIND: everything up to it was sent
                quiet = looked = time.monotonic()
                continue
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

    def _take(self, last, spot=None):
        """What is new after ``last``, and the new last id; waits a while.

        With nothing new and a ``spot``, parks it instead and gives PARKED.
        """
        deadline = time.monotonic() + IDLE_WAIT
        with self._changed:
            while True:
                if self.error:
                    raise WindowFailed(self.error)
                if self.floor is not None:
                    if last is None:
                        # where this stream starts: it says so at once
                        return b"", self._ids[-1] if self._ids else self.floor
                    if last < self.floor:
                        break  # behind the window: read Redis, outside the lock
                    first = bisect_right(self._ids, last)
                    if first < len(self._ids):
                        found = self._joined.get(first)
                        if found is None:
                            found = self._write_from(first)
                            self._keep_joined(first, found)
                        return found
                    # parked only exactly at the head: a stream that read
                    # Redis past what the reader has appended yet waits
                    head = self._ids[-1] if self._ids else self.floor
                    if spot is not None and last == head:
                        spot.last, spot.state = last, None
                        self._spots.add(spot)
                        self._sweep_every = min(self._sweep_every, spot.keepalive)
                        return PARKED, last
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b"", last
                self._changed.wait(remaining)
        return self._catch_up(last)

    def _keep_joined(self, first, found):
        """Keep the write ``found`` from entry ``first`` for the next stream
        there, dropping the oldest kept beyond JOINED_BYTES (under the lock)."""
        self._joined[first] = found
        self._joined_bytes += self._copied(first, found)
        while self._joined_bytes > JOINED_BYTES:
            oldest = next(iter(self._joined))  # a dict keeps insertion order
            self._joined_bytes -= self._copied(oldest, self._joined.pop(oldest))

    def _copied(self, first, found):
        """The bytes the write ``found`` from entry ``first`` copied: none when
        it is one entry alone, the window's own frame, shared (the frames
        stay as they are until the next read clears the joined writes)."""
        return 0 if found[0] is self._frames[first] else len(found[0])

    def _write_from(self, first):
        """The bytes of one write from entry ``first`` on, and its last id."""
        end, size = first + 1, len(self._frames[first])
        stop = min(len(self._ids), first + MAX_WRITE)
        while end < stop and size + len(self._frames[end]) <= WRITE_BYTES:
            size += len(self._frames[end])
            end += 1
        if end == first + 1:
            return self._frames[first], self._ids[first]  # shared, not copied
        return b"".join(self._frames[first:end]), self._ids[end - 1]

    def _catch_up(self, last):
        with self._changed:
            at = bisect_right(self._oversized, last)
            skip = self._oversized[at] if at < len(self._oversized) else None
        # a few streams at a time: each read may bring an entry of any size
        # that someone put in Redis without publish()
        if not self._catch_ups.acquire(timeout=IDLE_WAIT):
            return b"", last  # the stream looks at its client, then asks again
        try:
            entries = self._history.xrange(
                self.key,
                min=f"({format_id(last)}",
                max=f"({format_id(skip)}" if skip else "+",
                count=self._catch_up_count,
            )
            if entries:
                data = b"".join(self._frame(i, fields) for i, fields in entries)
                return data, parse_id(entries[-1][0])
        finally:
            self._catch_ups.release()
        if skip is not None:
            # what comes next is known to be too large: say so, unread
            return too_large(format_id(skip), self.max_bytes), skip
        # Redis has nothing after `last` (it restarted empty, or trimmed):
        # whatever is left is in the window
        return b"", max(last, self.floor)
