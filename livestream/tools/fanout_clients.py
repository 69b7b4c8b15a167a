"""The fan-out benchmark's SSE clients: many, on asyncio, in a process of their own.

:mod:`livestream.tools.fanout` starts them and talks to them over a pipe:
they send how many of them are ready until it says ``"go"``; once it has
published, it sends how many messages that was, and they answer with a
summary of what they received.
"""

import asyncio
import json
import time
from array import array

from .report import percentile

# a client that hears nothing for this long gives up
IDLE_TIMEOUT = 30.0


class SseClient(asyncio.Protocol):
    """One SSE client that counts the messages it gets, and how late they are.

    Each read is stamped with the time it arrived, and its messages are
    parsed at once, with no task per line: a client process that read line by
    line (a task for each) fell behind at 100,000 deliveries a second, with
    every byte already off the sockets, and counted its own backlog as
    latency.
    """

    def __init__(self, request, state):
        self.request, self.state = request, state
        self.done = asyncio.get_running_loop().create_future()
        self.transport = None
        self.buffer = b""
        self.headers = False
        self.ready = False
        self.heard = time.monotonic()  # when a message last came
        self.count = 0
        self.next = 0  # the number of the message expected next
        self.complete = True  # every message so far, each once, in order
        self.in_order = True

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        now = time.time()
        self.buffer += data
        if not self.headers:
            _, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            self.headers, self.buffer = True, rest
        *events, self.buffer = self.buffer.split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"event: failure"):
                    # what it did not deliver counts as lost
                    self.transport.abort()
                    return
                if line.startswith(b"data:") and self._message(
                    json.loads(line[5:]), now
                ):
                    self.transport.close()
                    return

    def _message(self, message, now):
        """Count ``message``, which arrived at ``now``; True for the end marker."""
        self.heard = time.monotonic()
        if "warmup" in message:
            if not self.ready:
                self.ready = True
                self.state["ready"] += 1
            return False
        if message.get("end"):
            return True
        n = message["n"]
        self.complete = self.complete and n == self.next
        self.in_order = self.in_order and n >= self.next
        self.next = n + 1
        self.count += 1
        self.state["latencies"].append(now - message["t"])
        return False

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


async def _open(host, port, client):
    try:
        await asyncio.get_running_loop().create_connection(lambda: client, host, port)
    except OSError:
        client.connection_lost(None)  # counted as nothing received


async def _watch(clients, timeout):
    # one watchdog for all: a client that hears no message for `timeout`
    # gives up (keep-alives keep the connection, not the client, waiting)
    while True:
        await asyncio.sleep(1)
        now = time.monotonic()
        for client in clients:
            late = now - client.heard > timeout
            if late and client.transport and not client.done.done():
                client.transport.abort()


async def _clients(host, port, path, count, conn, timeout=IDLE_TIMEOUT):
    state = {"ready": 0, "latencies": array("d")}
    # HTTP/1.0: the body comes as it is, not in chunks
    request = f"GET {path} HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n".encode()
    clients = [SseClient(request, state) for _ in range(count)]
    opening = asyncio.gather(*(_open(host, port, c) for c in clients))
    watchdog = asyncio.create_task(_watch(clients, timeout))
    # tell the publisher how many are ready until it says "go"
    while True:
        conn.send(state["ready"])
        if await asyncio.to_thread(conn.poll, 0.2) and conn.recv() == "go":
            break
    await opening
    await asyncio.gather(*(client.done for client in clients))
    watchdog.cancel()
    return clients, sorted(state["latencies"])


def _summary(clients, latencies, sent):
    return {
        "delivered": sum(c.count for c in clients) / (sent * len(clients)),
        "complete": sum(1 for c in clients if c.complete and c.count == sent),
        "in order": sum(1 for c in clients if c.in_order),
        "p50 ms": percentile(latencies, 50) * 1000 if latencies else None,
        "p99 ms": percentile(latencies, 99) * 1000 if latencies else None,
    }


def clients_process(host, port, path, count, conn):
    """Run ``count`` SSE clients; send back a summary once the run ends."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    clients, latencies = asyncio.run(_clients(host, port, path, count, conn))
    sent = conn.recv()
    conn.send(_summary(clients, latencies, sent))
