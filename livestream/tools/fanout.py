"""``livestream-fanout``: one publisher, many SSE clients, several workers,
livestream beside Flask-SSE in the same run.

For each load (clients × messages a second for some seconds) and each server
(livestream under ``gthread`` and under ``gevent`` workers, Flask-SSE under
``gevent`` as its docs deploy it) it starts a fresh redis-server and
gunicorn, opens the SSE clients (asyncio, in a process of their own),
publishes on a schedule, and reports how many messages reached every
client, in order, the latency from publish to receipt, each worker's memory,
and whether gunicorn killed a worker on ``WORKER TIMEOUT``. Then it checks
the targets, one line each.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..feed import connect, publish
from .report import markdown_table, percentile
from .services import start_gunicorn, start_redis

# (name, gunicorn app, worker class, path of the stream)
SERVERS = {
    "livestream/gthread": ("livestream:create_app()", "gthread", "/stream/feed"),
    "livestream/gevent": ("livestream:create_app()", "gevent", "/stream/feed"),
    "Flask-SSE/gevent": (
        "livestream.tools.sse_peer:create_app()",
        "gevent",
        "/stream",
    ),
}
# the loads: (clients, messages a second, seconds)
LOADS = [(1000, 100, 10), (1000, 10, 10), (5000, 10, 10)]
# a client that hears nothing for this long gives up
IDLE_TIMEOUT = 30.0
WARMUP_EVERY = 0.5


# the clients, in a process of their own


async def _client(host, port, path, state, timeout):
    received = []
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=2**22)
    except OSError:
        state["results"].append(received)
        return
    # HTTP/1.0: the body comes as it is, not in chunks, so lines can be read
    writer.write(f"GET {path} HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n".encode())
    ready = False
    try:
        await writer.drain()
        while await asyncio.wait_for(reader.readline(), timeout) not in (b"\r\n", b""):
            pass  # the headers
        heard = time.monotonic()
        while line := await asyncio.wait_for(reader.readline(), timeout):
            if line.startswith(b"event: failure"):
                break  # what it did not deliver counts as lost
            if not line.startswith(b"data:"):
                # keep-alives keep the connection, not the client, waiting
                if time.monotonic() - heard > timeout:
                    break
                continue
            heard = time.monotonic()
            message = json.loads(line[5:])
            if "warmup" in message:
                if not ready:
                    ready = True
                    state["ready"] += 1
            elif message.get("end"):
                break
            else:
                received.append((message["n"], time.time() - message["t"]))
    except (TimeoutError, ConnectionError):
        pass  # counted as messages not received
    finally:
        writer.close()
        state["results"].append(received)


async def _clients(host, port, path, count, conn):
    state = {"ready": 0, "results": []}
    tasks = [
        asyncio.create_task(_client(host, port, path, state, IDLE_TIMEOUT))
        for _ in range(count)
    ]
    # tell the publisher how many are ready until it says "go"
    while True:
        conn.send(state["ready"])
        if await asyncio.to_thread(conn.poll, 0.2) and conn.recv() == "go":
            break
    await asyncio.gather(*tasks)
    return state["results"]


def _summary(results, sent):
    latencies = sorted(latency for received in results for _, latency in received)
    complete = sum(1 for r in results if [n for n, _ in r] == list(range(sent)))
    in_order = sum(1 for r in results if [n for n, _ in r] == sorted({n for n, _ in r}))
    return {
        "delivered": sum(len(r) for r in results) / (sent * len(results)),
        "complete": complete,
        "in order": in_order,
        "p50 ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99 ms": percentile(latencies, 99) * 1000 if latencies else None,
    }


def clients_process(host, port, path, count, conn):
    """Run ``count`` SSE clients; send back a summary once the run ends."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    results = asyncio.run(_clients(host, port, path, count, conn))
    sent = conn.recv()
    conn.send(_summary(results, sent))


# the publisher, and one run


def _publisher(name, redis_url):
    if name.startswith("Flask-SSE"):
        from . import sse_peer

        app = sse_peer.create_app(redis_url)
        return lambda message: sse_peer.publish(app, message), lambda: None
    client = connect(redis_url)
    return lambda message: publish(message, client=client), client.close


def _wait_ready(conn, send, clients, deadline):
    ready = 0
    while ready < clients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready} of {clients} clients were ready")
        send({"warmup": True})
        end = time.monotonic() + WARMUP_EVERY
        while conn.poll(max(0.0, end - time.monotonic())):
            ready = conn.recv()
    conn.send("go")


def _worker_memory_mb(master_pid):
    import psutil

    workers = psutil.Process(master_pid).children()
    return sorted(round(w.memory_info().rss / 2**20) for w in workers)


def run_fanout(
    clients=1000,
    workers=4,
    rate=100.0,
    seconds=10.0,
    server="livestream/gthread",
    connect_timeout=120.0,
):
    """Run one server under one load, once; the figures, as a dict."""
    app, worker_class, path = SERVERS[server]
    per_worker = clients // workers + 100  # room for an uneven spread
    with (
        tempfile.TemporaryDirectory(prefix="livestream-fanout-") as scratch,
        start_redis() as redis_service,
    ):
        log_path = Path(scratch) / "gunicorn.log"
        with (
            open(log_path, "wb") as log,
            start_gunicorn(
                workers=workers,
                threads=per_worker,
                redis_url=redis_service.url,
                app=app,
                worker_class=worker_class,
                log=log,
                extra=("--backlog", str(clients * 2)),
            ) as gunicorn,
        ):
            host, port = gunicorn.url.removeprefix("http://").split(":")
            send, close = _publisher(server, redis_service.url)
            ours, theirs = multiprocessing.get_context("spawn").Pipe()
            process = multiprocessing.get_context("spawn").Process(
                target=clients_process, args=(host, int(port), path, clients, theirs)
            )
            process.start()
            try:
                _wait_ready(ours, send, clients, time.monotonic() + connect_timeout)
                began = time.monotonic()
                count = int(rate * seconds)
                for n in range(count):
                    # publish on a schedule, not "sleep after each": the rate holds
                    delay = began + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    send({"n": n, "t": time.time()})
                send({"end": True})
                ours.send(count)
                summary = ours.recv()
                while not isinstance(summary, dict):  # ready counts sent before "go"
                    summary = ours.recv()
                elapsed = time.monotonic() - began
                memory = _worker_memory_mb(gunicorn.process.pid)
            finally:
                close()
                process.join(10)
                if process.is_alive():
                    process.kill()
        timeouts = log_path.read_text(errors="replace").count("WORKER TIMEOUT")
    return {
        "server": server,
        "clients": clients,
        "workers": workers,
        "messages": count,
        "rate /s": rate,
        **summary,
        "worker MB": memory,
        "worker timeouts": timeouts,
        "seconds": round(elapsed, 1),
    }


COLUMNS = [
    ("server", "server", "{}"),
    ("clients", "clients", "{:,}"),
    ("rate /s", "msg/s", "{:g}"),
    ("messages", "messages", "{}"),
    ("delivered", "delivered", "{:.2%}"),
    ("complete", "complete, in order", "{:,}"),
    ("p50 ms", "p50 ms", "{:,.0f}"),
    ("p99 ms", "p99 ms", "{:,.0f}"),
    ("worker MB", "worker MB", lambda mb: "–".join(map(str, (min(mb), max(mb))))),
    ("worker timeouts", "WORKER TIMEOUT", "{}"),
    ("seconds", "seconds", "{}"),
]


def targets(row):
    """The issue's targets that apply to ``row``: (what, met) pairs."""
    checks = []
    load = (row["clients"], row["rate /s"])
    everything = row["delivered"] == 1 and row["complete"] == row["clients"]
    p99 = row["p99 ms"] if row["p99 ms"] is not None else float("inf")
    if load == (1000, 100):
        checks.append(
            ("1,000 × 100/s: 100% delivered, every client complete", everything)
        )
        checks.append(("1,000 × 100/s: p99 ≤ 250 ms", p99 <= 250))
        checks.append(
            ("1,000 × 100/s: each worker ≤ 100 MB", max(row["worker MB"]) <= 100)
        )
    if load == (1000, 10):
        checks.append(("1,000 × 10/s: p99 ≤ 50 ms", p99 <= 50))
    if load == (5000, 10):
        checks.append(("5,000 × 10/s: 100% delivered", everything))
        checks.append(("5,000 × 10/s: p99 ≤ 1 s", p99 <= 1000))
    checks.append(("no WORKER TIMEOUT", row["worker timeouts"] == 0))
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(prog="livestream-fanout", description=__doc__)
    parser.add_argument("--clients", type=int, help="one load instead of the three")
    parser.add_argument("--rate", type=float, default=100.0, help="messages a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated, of: " + ", ".join(SERVERS),
    )
    args = parser.parse_args(argv)
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in servers if name not in SERVERS]
    if unknown:
        parser.error(f"--servers: unknown {unknown}; known: {list(SERVERS)}")
    if args.workers < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--workers, --rate and --seconds must be above 0")
    loads = LOADS if args.clients is None else [(args.clients, args.rate, args.seconds)]
    rows = []
    for clients, rate, seconds in loads:
        for server in servers:
            print(f"{server}: {clients} clients × {rate:g}/s …", file=sys.stderr)
            try:
                row = run_fanout(clients, args.workers, rate, seconds, server)
            except RuntimeError as error:
                print(f"  did not run: {error}", file=sys.stderr)
                continue
            rows.append(row)
    print(markdown_table(rows, COLUMNS))
    print()
    for row in rows:
        if row["server"].startswith("livestream"):
            for what, met in targets(row):
                print(f"target {what} ({row['server']}): {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
