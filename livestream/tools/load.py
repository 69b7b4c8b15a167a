"""``livestream-load``: many clients on one server, every message counted.

Each client reads its own NDJSON stream of the numbers 0 to N-1 over a plain
HTTP connection and checks it got every number once, in order.
"""

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

from ..app import create_app
from ..server import serve
from ..sources import numbers
from .report import markdown_table


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="livestream-load", description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=100, help="per client")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds")
    args = parser.parse_args(argv)
    with serve(create_app(numbers)) as server:
        result = run_load(server, args.clients, args.messages, args.interval)
    print(markdown_table([result]))
    return (
        0
        if result["lost"] == result["out of order"] == result["failed clients"] == 0
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
