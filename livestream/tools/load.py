"""``livestream-load``: many clients on one server, every message counted.

Each client reads its own stream of the numbers 0 to N-1 over a plain HTTP
connection and checks it got every number once, in order.

By default the clients are threads beside the server (``--clients``). With
``--arrivals N``, N clients arrive at once from a process of their own
(asyncio, so that the clients are not what is slow), on NDJSON and on SSE,
and the table says how long each waited for the first byte of its answer
(p50 and max), how many completed, and how many were dropped: refused with
503, reset, cut short, or never answered.
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import statistics
import threading
import time
from urllib.parse import urlsplit

from ..app import create_app
from ..server import serve
from ..sources import numbers
from .report import markdown_table, percentile

# the streams an arrivals run opens
ARRIVAL_PATHS = ["/stream/ndjson", "/stream/sse"]
# the bound: the first byte reaches every arriving client within it
FIRST_BYTE_WITHIN = 2.0


def read_numbers(url, timeout):
    """The numbers one client reads from an NDJSON stream at ``url``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        return [json.loads(line) for line in response]
    finally:
        connection.close()


def run_load(server, clients=200, messages=100, interval=0.01, timeout=60.0):
    """Open ``clients`` streams at once on ``server``; count what each received."""
    url = f"{server.url}/stream/ndjson?count={messages}&interval={interval}"
    results = [None] * clients
    ready = threading.Barrier(clients + 1)

    def client(k):
        ready.wait()
        began = time.monotonic()
        try:
            got = read_numbers(url, timeout)
        except OSError as error:
            got = error
        results[k] = (got, time.monotonic() - began)

    threads = [
        threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)
    ]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    ready.wait()  # every client starts at once
    for thread in threads:
        thread.join(timeout)
    elapsed = time.monotonic() - began
    expected = list(range(messages))
    failed = [r for r in results if r is None or isinstance(r[0], Exception)]
    received = [r[0] for r in results if r is not None and isinstance(r[0], list)]
    return {
        "clients": clients,
        "messages each": messages,
        "interval s": interval,
        "received": sum(len(r) for r in received),
        "lost": clients * messages - sum(len(set(r) & set(expected)) for r in received),
        "out of order": sum(1 for r in received if r != sorted(r)),
        "duplicated": sum(len(r) - len(set(r)) for r in received),
        "failed clients": len(failed),
        "seconds": round(elapsed, 2),
        "median client s": round(statistics.median(r[1] for r in results if r), 2),
        "messages/s": round(sum(len(r) for r in received) / elapsed),
    }


class Arrival(asyncio.Protocol):
    """One arriving client: when it began to connect, when its connection
    opened and when the first byte of the answer came (seconds from the
    crowd's start), and the whole answer once the server closed it."""

    def __init__(self, request):
        self.request = request
        self.done = asyncio.get_running_loop().create_future()
        self.began = self.connected = self.first_byte = None
        self.data = bytearray()
        self.error = None

    def connection_made(self, transport):
        self.connected = time.monotonic()
        transport.write(self.request)

    def data_received(self, data):
        if self.first_byte is None:
            self.first_byte = time.monotonic()
        self.data += data

    def connection_lost(self, error):
        self.error = self.error or error
        if not self.done.done():
            self.done.set_result(None)


def numbers_in(body, kind):
    """The numbers an HTTP/1.0 answer's body carries, and whether it ended
    as a stream that finished well ends (SSE's end event; NDJSON's last line)."""
    if kind == "sse":
        events, _, end = body.partition(b"event: end\n")
        lines = events.split(b"\n")
        got = [json.loads(line[5:]) for line in lines if line.startswith(b"data:")]
        return got, end.startswith(b"data:")
    got = [json.loads(line) for line in body.splitlines() if line]
    return got, body.endswith(b"\n")


async def _arrive(host, port, path, clients, timeout):
    # HTTP/1.0: the body comes as it is, not in chunks, and ends with the
    # connection
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    arrivals = [Arrival(request) for _ in range(clients)]

    async def open_one(arrival):
        # a client's wait counts from its own arrival: the time this process
        # takes to start a thousand connections is not the server's
        arrival.began = time.monotonic()
        try:
            await loop.create_connection(lambda: arrival, host, port)
        except OSError as error:
            arrival.connection_lost(error)

    await asyncio.gather(*(open_one(a) for a in arrivals))
    await asyncio.wait([a.done for a in arrivals], timeout=timeout)
    for arrival in arrivals:
        if not arrival.done.done():
            arrival.error = TimeoutError("no end within the timeout")
    return arrivals


def arrivals_process(host, port, path, clients, messages, timeout, conn):
    """Open ``clients`` connections at once to ``path``; send back, for each,
    (seconds from its arrival to the first byte or None, status, numbers got,
    whether it ended well, error, seconds from the first arrival to its
    connection or None)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    kind = "sse" if "/sse" in path else "ndjson"
    arrivals = asyncio.run(_arrive(host, port, path, clients, timeout))
    start = min(a.began for a in arrivals)
    results = []
    for arrival in arrivals:
        first_byte = arrival.first_byte and arrival.first_byte - arrival.began
        connected = arrival.connected and arrival.connected - start
        head, _, body = bytes(arrival.data).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
        got, ended = numbers_in(body, kind) if status == 200 else ([], False)
        error = repr(arrival.error) if arrival.error else None
        results.append((first_byte, status, got, ended, error, connected))
    conn.send(results)


def run_arrivals(server, path, clients=1000, messages=5, interval=1.0, timeout=60.0):
    """``clients`` arriving at once at ``path`` on ``server``, from a process
    of their own: how soon each got its first byte, and what reached them.

    ``server`` runs in this process: the CPU time this process spent
    meanwhile is the server's (this thread only waits on a pipe). The
    machine's load average goes beside it, since on a shared machine the
    first-byte times are only as good as the CPU the server was given.
    """
    cpu = time.process_time()
    url = urlsplit(f"{server.url}{path}?count={messages}&interval={interval}")
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=arrivals_process,
        args=(url.hostname, url.port, f"{url.path}?{url.query}", clients, messages),
        kwargs={"timeout": timeout, "conn": theirs},
        daemon=True,
    )
    process.start()
    try:
        # bounded: the clients give up after `timeout`; a client process that
        # failed sends nothing, and its exit ends the wait
        deadline = time.monotonic() + timeout + 30
        while not ours.poll(0.2):
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the arriving clients sent no results")
        results = ours.recv()
    finally:
        process.join(5)
        if process.is_alive():
            process.kill()
    cpu = time.process_time() - cpu
    expected = list(range(messages))
    firsts = sorted(r[0] for r in results if r[0] is not None)
    complete = sum(1 for r in results if r[3] and r[2] == expected)
    connected = [r[5] for r in results if r[5] is not None]
    return {
        "stream": path,
        "clients": clients,
        "messages each": messages,
        # when the last connection opened, from the first arrival: the
        # kernel completes connections before the server accepts them, so a
        # late one says the client process was slow to make them
        "last connected s": round(max(connected), 3) if connected else None,
        "first byte p50 s": round(percentile(firsts, 50), 3) if firsts else None,
        "first byte max s": round(firsts[-1], 3) if firsts else None,
        "no first byte": clients - len(firsts),
        f"first byte over {FIRST_BYTE_WITHIN:g} s": sum(
            1 for f in firsts if f > FIRST_BYTE_WITHIN
        ),
        "completed": complete,
        "refused (503)": sum(1 for r in results if r[1] == 503),
        "dropped": clients - complete,
        "server CPU s": round(cpu, 2),
        "load avg": round(os.getloadavg()[0], 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="livestream-load", description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument(
        "--messages", type=int, help="per client (100; 5 with --arrivals)"
    )
    parser.add_argument(
        "--interval", type=float, help="seconds (0.01; 1.0 with --arrivals)"
    )
    parser.add_argument(
        "--arrivals",
        type=int,
        metavar="N",
        help="N clients arriving at once, from a process of their own, on each "
        "of NDJSON and SSE: first-byte times, completions and drops",
    )
    args = parser.parse_args(argv)
    if args.arrivals is not None and args.arrivals < 1:
        parser.error("--arrivals must be at least 1")
    if args.arrivals:
        # the default source's pace, a message a second: the crowd's cost is
        # its arrival, not its messages
        messages = 5 if args.messages is None else args.messages
        interval = 1.0 if args.interval is None else args.interval
        with serve(create_app(numbers)) as server:
            rows = [
                run_arrivals(server, path, args.arrivals, messages, interval)
                for path in ARRIVAL_PATHS
            ]
        print(markdown_table(rows))
        slow = f"first byte over {FIRST_BYTE_WITHIN:g} s"
        ok = all(r["dropped"] == r[slow] == r["no first byte"] == 0 for r in rows)
        return 0 if ok else 1
    messages = 100 if args.messages is None else args.messages
    interval = 0.01 if args.interval is None else args.interval
    with serve(create_app(numbers)) as server:
        result = run_load(server, args.clients, messages, interval)
    print(markdown_table([result]))
    return (
        0
        if result["lost"] == result["out of order"] == result["failed clients"] == 0
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
