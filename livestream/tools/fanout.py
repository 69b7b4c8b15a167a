"""``livestream-fanout``: one publisher, many SSE clients, several workers,
livestream beside Flask-SSE in the same run.

For each load (clients × messages a second for some seconds) and each server
(livestream under ``gthread`` and under ``gevent`` workers, Flask-SSE under
``gevent`` as its docs deploy it) it starts a fresh redis-server and
gunicorn, opens the SSE clients (asyncio, in a process of their own),
publishes on a schedule, and reports how many messages reached every
client, in order, the latency from publish to receipt, each worker's memory,
whether gunicorn killed a worker on ``WORKER TIMEOUT``, and the cores the run
used beside those other jobs on the machine used meanwhile. Then it checks
the targets, one line each.
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from ..feed import connect, publish
from .fanout_clients import clients_process
from .report import markdown_table
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
# until every client is ready, a warm-up message this often (seconds): a
# client counts as ready once one reaches it, so the run starts on streams
# that are open end to end, not on connections still being accepted
WARMUP_EVERY = 0.5


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


def _cpu_seconds(pids):
    """CPU seconds used so far by the processes ``pids``, and by the machine."""
    import psutil

    ours = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue  # a worker that ended counts nothing
        ours += times.user + times.system
    t = psutil.cpu_times()
    # steal: time the host gave to other machines, which ours had to wait out
    machine = t.user + t.nice + t.system + t.irq + t.softirq + t.steal
    return ours, machine


def _run_pids(gunicorn, redis_service, clients):
    import psutil

    workers = psutil.Process(gunicorn.process.pid).children()
    return [
        os.getpid(),
        gunicorn.process.pid,
        *(worker.pid for worker in workers),
        redis_service.process.pid,
        clients.pid,
    ]


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
                connections=per_worker,
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
                # what the run used of the machine, and what everything else did:
                # a run that shares two cores with other jobs waits for them
                pids = _run_pids(gunicorn, redis_service, process)
                ours_before, machine_before = _cpu_seconds(pids)
                count = int(rate * seconds)
                for n in range(count):
                    # publish on a schedule, not "sleep after each": the rate holds
                    delay = began + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    send({"n": n, "t": time.time()})
                send({"end": True})
                # a publisher held up by its server's Redis publishes slower
                # than `rate`: its messages are late before they are sent
                publishing = time.monotonic() - began
                ours.send(count)
                summary = ours.recv()
                while not isinstance(summary, dict):  # ready counts sent before "go"
                    summary = ours.recv()
                elapsed = time.monotonic() - began
                ours, machine = _cpu_seconds(pids)
                ours -= ours_before
                others = machine - machine_before - ours
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
        "publishing s": round(publishing, 1),
        "run CPU": ours / elapsed,
        "others' CPU": max(0.0, others) / elapsed,
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
    ("publishing s", "publishing s", "{}"),
    ("run CPU", "run's cores", "{:.2f}"),
    ("others' CPU", "others' cores", "{:.2f}"),
    ("seconds", "seconds", "{}"),
    # why a server has no figures: it did not get going under that load
    ("did not run", "did not run", "{}"),
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
                # a row all the same: a peer that fails under a load is a result
                print(f"  did not run: {error}", file=sys.stderr)
                row = {"server": server, "clients": clients, "rate /s": rate}
                row["did not run"] = str(error).replace("|", "/")[:120]
            rows.append(row)
    print(markdown_table(rows, COLUMNS))
    print()
    for row in rows:
        if row["server"].startswith("livestream") and "did not run" not in row:
            for what, met in targets(row):
                print(f"target {what} ({row['server']}): {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
