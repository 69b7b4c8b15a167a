"""``livestream-fanout``: one publisher, many SSE clients, several workers.

Starts a redis-server and gunicorn (threaded workers) on this machine, opens
``--clients`` SSE connections to ``/stream/feed``, publishes ``--rate``
messages a second for ``--seconds``, and reports how many messages reached
every client, the latency from ``publish()`` to receipt, and each worker's
memory.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ..feed import connect, publish
from .report import markdown_table, percentile
from .services import start_gunicorn, start_redis


async def _client(host, port, following, results, timeout):
    reader, writer = await asyncio.open_connection(host, port, limit=2**20)
    # HTTP/1.0: the body comes as it is, not in chunks, so lines can be read
    writer.write(b"GET /stream/feed HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
    await writer.drain()
    received = []
    try:
        while await asyncio.wait_for(reader.readline(), timeout) not in (b"\r\n", b""):
            pass  # the headers
        while line := await asyncio.wait_for(reader.readline(), timeout):
            if line.startswith(b": following"):
                following.append(1)
            elif line.startswith(b"event: failure"):
                break  # the stream failed: what it did not deliver counts as lost
            elif line.startswith(b"data: "):
                message = json.loads(line[6:])
                if message.get("end"):
                    break
                received.append((message["n"], time.time() - message["t"]))
    except (TimeoutError, ConnectionError):
        pass  # counted as messages not received
    finally:
        writer.close()
        results.append(received)


def _publish(redis_url, rate, seconds, start):
    client = connect(redis_url)
    count = int(rate * seconds)
    for n in range(count):
        # publish on a schedule, not "sleep after each": the rate holds
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publish({"n": n, "t": time.time()}, client=client)
    publish({"end": True}, client=client)
    client.close()
    return count


async def _run_clients(host, port, clients, redis_url, rate, seconds, timeout):
    following, results = [], []
    tasks = [
        asyncio.create_task(_client(host, port, following, results, timeout))
        for _ in range(clients)
    ]
    deadline = time.monotonic() + timeout
    while len(following) < clients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(following)} of {clients} clients connected")
        await asyncio.sleep(0.05)
    began = time.monotonic()
    sent = await asyncio.to_thread(_publish, redis_url, rate, seconds, began)
    await asyncio.gather(*tasks)
    return sent, results, time.monotonic() - began


def _worker_memory_mb(master_pid):
    import psutil

    workers = psutil.Process(master_pid).children()
    return sorted(round(w.memory_info().rss / 2**20) for w in workers)


def run_fanout(clients=1000, workers=4, rate=100.0, seconds=10.0, timeout=60.0):
    """Run the whole set-up once; the figures, as a dict."""
    threads = clients // workers + 20  # a thread for each stream a worker holds
    with (
        start_redis() as redis_service,
        start_gunicorn(
            workers=workers,
            threads=threads,
            redis_url=redis_service.url,
            extra=("--worker-connections", str(threads), "--backlog", str(clients * 2)),
        ) as gunicorn,
    ):
        host, port = gunicorn.url.removeprefix("http://").split(":")
        # a thread of its own for the clients' event loop: a notebook's main
        # thread already runs one
        with ThreadPoolExecutor(max_workers=1) as pool:
            sent, results, elapsed = pool.submit(
                asyncio.run,
                _run_clients(
                    host, int(port), clients, redis_service.url, rate, seconds, timeout
                ),
            ).result()
        memory = _worker_memory_mb(gunicorn.process.pid)
    latencies = sorted(latency for received in results for _, latency in received)
    in_order = sum(1 for r in results if [n for n, _ in r] == list(range(len(r))))
    delivered = sum(len(r) for r in results)
    return {
        "clients": clients,
        "workers": workers,
        "messages": sent,
        "rate /s": rate,
        "delivered": delivered / (sent * clients) if sent else None,
        "in order": in_order,
        "p50 ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99 ms": percentile(latencies, 99) * 1000 if latencies else None,
        "worker MB": memory,
        "seconds": round(elapsed, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="livestream-fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="messages a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.workers < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--clients, --workers, --rate and --seconds must be above 0")
    result = run_fanout(args.clients, args.workers, args.rate, args.seconds)
    print(
        markdown_table(
            [result],
            [
                ("clients", "clients", "{}"),
                ("workers", "workers", "{}"),
                ("messages", "messages", "{}"),
                ("rate /s", "rate /s", "{:g}"),
                ("delivered", "delivered", "{:.2%}"),
                ("in order", "in order", f"{{}}/{result['clients']}"),
                ("p50 ms", "p50 ms", "{:,.0f}"),
                ("p99 ms", "p99 ms", "{:,.0f}"),
                ("worker MB", "worker MB", lambda mb: ", ".join(map(str, mb))),
                ("seconds", "seconds", "{}"),
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
