"""The fan-out benchmark's SSE clients: many, over several processes, each a
loop of its own on ``epoll`` and raw sockets, that measures how far behind it
runs.

:mod:`livestream.tools.fanout` starts them (:class:`ClientGroup`) and talks
to each process over a pipe: a process sends how many of its clients are
ready until it is told ``"go"``; once the run has published, it is sent how
many messages that was, and it answers with a summary of what its clients
received.

Why not asyncio: a selector loop costs a handle and a callback per ready
socket; at 100,000 reads a second on a two-core machine that is the client,
not the server, being measured. Here a read is one ``recv`` and a split, and
every read is stamped when it returns. The loop also times a tick every
:data:`TICK` seconds: how late a tick fires is how long data could wait in
the kernel for this process (its *lag*), which the benchmark sets beside the
latencies it reports.
"""

import contextlib
import errno
import json
import multiprocessing
import multiprocessing.connection
import os
import select
import socket
import time
from array import array

from .report import percentile

# a client that hears no message for this long gives up
IDLE_TIMEOUT = 30.0
# clients a process serves, by default: one process of 1,000 took 100,000
# messages a second (1,000 × 100/s) on a fifth of a core, and 10,000 a second
# on under a tenth (docs/measurements.md); more to a process, and a message's
# batch of reads, so the process's lag, grows with them
PER_PROCESS = 1000
# connections a process has in flight at once while it opens them: all 10,000
# at once overflow the server's listen backlog, and a dropped SYN is retried
# only after a second
OPENING = 256
# how often the loop looks at the clock, for its lag
TICK = 0.01
# a row's latencies are the client's as much as the server's when the
# client's p99 lag is this share of the p99 latency, or more (and at least
# LAG_FLOOR_MS, which a TICK-long tick cannot resolve below)
LAG_SHARE = 0.25
LAG_FLOOR_MS = 5.0
READ_SIZE = 65536
# a client that got the end marker keeps its connection open until the run is
# over: 10,000 streams closing at once cost a gthread server ~1.6 CPU-seconds
# (~160 µs each, measured), which landed in the delivery window as they
# raced the client processes' summaries (30.8 µs per delivery at 10,000 × 1/s
# where publishing itself cost ~11). Opening is not in the window either
HOLD_OPEN = True
# the client processes' nice value, where they may raise their priority
CLIENT_NICE = -5


def fell_behind(lag_p99_ms, latency_p99_ms):
    """Whether a client whose loop ran ``lag_p99_ms`` late (p99) measured its
    own delay rather than the server's in a p99 of ``latency_p99_ms``."""
    if latency_p99_ms is None:
        return lag_p99_ms > LAG_FLOOR_MS
    return lag_p99_ms > max(LAG_FLOOR_MS, LAG_SHARE * latency_p99_ms)


class SseClient:
    """One client's count of what it got; :meth:`feed` parses the bytes it read.

    ``complete``: every message so far, each once, in order; ``in_order``:
    none came before one it had already had.
    """

    __slots__ = (
        "sock",
        "buffer",
        "headers",
        "ready",
        "heard",
        "count",
        "next",
        "complete",
        "in_order",
        "ended",
    )

    def __init__(self, sock=None):
        self.sock = sock
        self.buffer = b""
        self.headers = False
        self.ready = False
        self.heard = time.monotonic()  # when a message last came
        self.count = 0
        self.next = 0  # the number of the message expected next
        self.complete = True
        self.in_order = True
        self.ended = False  # the end marker came

    def feed(self, data, now, state):
        """Take ``data`` read at ``now`` (wall clock); True once the stream
        is over for this client (the end marker, or a failure event)."""
        buffer = self.buffer + data
        if not self.headers:
            _, found, rest = buffer.partition(b"\r\n\r\n")
            if not found:
                self.buffer = buffer
                return False
            self.headers, buffer = True, rest
        *events, self.buffer = buffer.split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    if self._message(json.loads(line[5:]), now, state):
                        return True
                elif line.startswith(b"event: failure"):
                    # what the server did not deliver counts as lost
                    return True
        return False

    def _message(self, message, now, state):
        self.heard = time.monotonic()
        if "warmup" in message:
            if not self.ready:
                self.ready = True
                state["ready"] += 1
            return False
        if message.get("end"):
            self.ended = True
            return True
        n = message["n"]
        self.complete = self.complete and n == self.next
        self.in_order = self.in_order and n >= self.next
        self.next = n + 1
        self.count += 1
        state["latencies"].append(now - message["t"])
        if state["first"] is None:
            state["first"] = (time.monotonic(), time.thread_time())
        return False


def _run(host, port, path, count, conn, timeout):
    """Open ``count`` clients, serve them until each ends; what they got."""
    request = f"GET {path} HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n".encode()
    state = {"ready": 0, "latencies": array("d"), "first": None}
    lags = array("d")
    poller = select.epoll()
    clients = {}  # fd: client, for each connection open or opening
    connecting = set()
    finished = []
    to_open = count
    going = False
    pipe = conn.fileno()
    poller.register(pipe, select.EPOLLIN)

    def finish(fd, keep=False):
        client = clients.pop(fd)
        connecting.discard(fd)
        poller.unregister(fd)
        if not keep:
            client.sock.close()
        finished.append(client)

    def open_some():
        nonlocal to_open
        while to_open and len(connecting) < OPENING:
            to_open -= 1
            sock = socket.socket()
            sock.setblocking(False)
            err = sock.connect_ex((host, port))
            client = SseClient(sock)
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                finished.append(client)  # counted as nothing received
                continue
            fd = sock.fileno()
            clients[fd] = client
            connecting.add(fd)
            poller.register(fd, select.EPOLLOUT)

    open_some()
    next_tick = time.monotonic() + TICK
    next_watch = time.monotonic() + 1.0
    next_ready = 0.0
    while clients or to_open or not going:
        now = time.monotonic()
        if not going and now >= next_ready:
            conn.send(state["ready"])
            next_ready = now + 0.2
        events = poller.poll(max(0.0, next_tick - now))
        for fd, _ in events:
            if fd == pipe:
                if conn.recv() == "go":
                    going = True
                    poller.unregister(pipe)
                continue
            client = clients.get(fd)
            if client is None:
                continue
            if fd in connecting:
                if client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    finish(fd)
                    continue
                connecting.discard(fd)
                client.sock.send(request)  # a few dozen bytes: the buffer takes them
                poller.modify(fd, select.EPOLLIN)
                continue
            try:
                data = client.sock.recv(READ_SIZE)
            except OSError:
                data = b""
            if not data:
                finish(fd)
            elif client.feed(data, time.time(), state):
                # open until the run has measured the server: see HOLD_OPEN
                finish(fd, keep=HOLD_OPEN)
        if to_open and len(connecting) < OPENING:
            open_some()
        now = time.monotonic()
        if now >= next_tick:
            # the lag that counts is the publishing's: not the opening's, nor
            # a quiet feed's, whose ticks on time would thin out its p99
            if state["first"] is not None:
                lags.append(now - next_tick)
            next_tick = now + TICK
        if now >= next_watch:
            # one watchdog for all: keep-alives keep a connection, not a
            # client, waiting
            next_watch = now + 1.0
            for fd in [fd for fd, c in clients.items() if now - c.heard > timeout]:
                finish(fd)
    poller.close()
    ended = (time.monotonic(), time.thread_time())
    first = state["first"] or ended
    wall = ended[0] - first[0]
    busy = (ended[1] - first[1]) / wall if wall > 0 else 0.0
    return finished, state["latencies"], lags, busy


def _summary(clients, latencies, lags, busy, sent):
    latencies = sorted(latencies)
    lags = sorted(lags)
    return {
        "clients": len(clients),
        "received": sum(c.count for c in clients),
        "delivered": sum(c.count for c in clients) / (sent * len(clients)),
        "complete": sum(1 for c in clients if c.complete and c.count == sent),
        "in order": sum(1 for c in clients if c.in_order),
        "p50 ms": percentile(latencies, 50) * 1000 if latencies else None,
        "p99 ms": percentile(latencies, 99) * 1000 if latencies else None,
        "lag p99 ms": percentile(lags, 99) * 1000 if lags else 0.0,
        "lag max ms": lags[-1] * 1000 if lags else 0.0,
        "client busy": busy,
        # for the benchmark to merge processes' latencies
        "latencies": array("d", latencies).tobytes(),
    }


def raise_open_files():
    """Raise this process's open-file limit to its hard limit; the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def clients_process(host, port, path, count, conn, timeout=IDLE_TIMEOUT):
    """Run ``count`` SSE clients; send back a summary once the run ends."""
    raise_open_files()
    clients, latencies, lags, busy = _run(host, port, path, count, conn, timeout)
    sent = conn.recv()
    conn.send(_summary(clients, latencies, lags, busy, sent))
    if HOLD_OPEN:
        # the connections close when the benchmark closes the pipe
        # (ClientGroup.close), after it has read the server's CPU
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        for client in clients:
            client.sock.close()


def _waiting_process(count, conn, timeout):
    # started before the server is up, told where it is once it answers: the
    # second a process takes to start overlaps the server's start
    # ahead of the machine's other jobs where it may be (root): a client that
    # waits for a core adds that wait to every latency it measures; its CPU
    # is the same either way
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, CLIENT_NICE)
    try:
        host, port, path = conn.recv()
    except EOFError:  # the run ended before its server answered
        return
    clients_process(host, port, path, count, conn, timeout)


class ClientGroup:
    """``count`` clients over as many processes as it takes to give each at
    most ``per_process``; they connect once :meth:`connect` says where."""

    def __init__(self, count, per_process=PER_PROCESS, timeout=IDLE_TIMEOUT):
        context = multiprocessing.get_context("spawn")
        processes = max(1, -(-count // per_process))
        shares = [
            count // processes + (i < count % processes) for i in range(processes)
        ]
        self.count = count
        self.pipes, self.processes = [], []
        for share in shares:
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_waiting_process,
                args=(share, theirs, timeout),
                daemon=True,
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)
        self.ready_counts = [0] * len(shares)

    def connect(self, host, port, path):
        """Open every client to ``http://host:port/path``."""
        for pipe in self.pipes:
            pipe.send((host, port, path))

    @property
    def pids(self):
        return [process.pid for process in self.processes]

    def ready(self, wait=0.0):
        """How many clients are ready, after reading for up to ``wait`` seconds."""
        end = time.monotonic() + wait
        while True:
            for i, pipe in enumerate(self.pipes):
                while pipe.poll():
                    self.ready_counts[i] = _receive(pipe)
            left = end - time.monotonic()
            if left <= 0:
                return sum(self.ready_counts)
            multiprocessing.connection.wait(self.pipes, left)

    def go(self):
        for pipe in self.pipes:
            pipe.send("go")

    def finish(self, sent, timeout):
        """Tell each process ``sent`` messages went out; their merged summary."""
        deadline = time.monotonic() + timeout
        summaries = []
        for pipe in self.pipes:
            pipe.send(sent)
        for pipe in self.pipes:
            summary = None
            while not isinstance(summary, dict):  # ready counts sent before "go"
                if not pipe.poll(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"the clients did not finish within {timeout} s")
                summary = _receive(pipe)
            summaries.append(summary)
        return merge(summaries, sent)

    def close(self):
        for pipe in self.pipes:
            pipe.close()  # a process still waiting to be told where: its recv ends
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


def _receive(pipe):
    try:
        return pipe.recv()
    except EOFError:
        # a row that says so, not a traceback that ends the whole run
        raise RuntimeError("a client process ended early (its error above)") from None


def merge(summaries, sent):
    """One summary of several processes' clients."""
    latencies = array("d")
    for summary in summaries:
        latencies.frombytes(summary["latencies"])
    latencies = sorted(latencies)
    clients = sum(s["clients"] for s in summaries)
    received = sum(s["received"] for s in summaries)
    return {
        "clients": clients,
        "received": received,
        "delivered": received / (sent * clients) if clients and sent else 0.0,
        "complete": sum(s["complete"] for s in summaries),
        "in order": sum(s["in order"] for s in summaries),
        "p50 ms": percentile(latencies, 50) * 1000 if latencies else None,
        "p99 ms": percentile(latencies, 99) * 1000 if latencies else None,
        # the worst process's: its clients' latencies are the least the server's
        "lag p99 ms": max(s["lag p99 ms"] for s in summaries),
        "lag max ms": max(s["lag max ms"] for s in summaries),
        "client busy": max(s["client busy"] for s in summaries),
        "client processes": len(summaries),
    }
