"""``livestream-fanout``: one publisher, many SSE clients, four workers:
livestream beside Flask-SSE and nginx + Nchan in the same run.

For each load (clients × messages a second) and each server (livestream under
``gthread`` and under ``gevent`` workers, Flask-SSE under ``gevent`` as its
docs deploy it, each on a fresh redis-server and gunicorn; and nginx with the
Nchan module, its worker processes as many as gunicorn's workers, taking each
message by an HTTP POST), it opens the SSE clients (several processes, see
:mod:`livestream.tools.fanout_clients`), leaves them on a quiet feed for
``--idle`` seconds and measures what that costs the server, then publishes on
a schedule for ``--seconds``. Each row: what reached the clients, in order;
the latency from publish to receipt, unless the clients fell behind; the
server's CPU-seconds (master and workers; not Redis, not the clients) and
deliveries per CPU-second; the worst worker's memory. The headline is
livestream's share of Nchan's deliveries per CPU-second at each load; then
a line per target of issue 19.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ..feed import connect, publish
from . import nchan
from .fanout_clients import (
    LAG_FLOOR_MS,
    LAG_SHARE,
    ClientGroup,
    fell_behind,
    raise_open_files,
)
from .report import markdown_table
from .services import start_gunicorn, start_redis

# name: (how it is served, gunicorn app, worker class, path of the stream)
SERVERS = {
    "livestream/gthread": (
        "gunicorn",
        "livestream:create_app()",
        "gthread",
        "/stream/feed",
    ),
    "livestream/gevent": (
        "gunicorn",
        "livestream:create_app()",
        "gevent",
        "/stream/feed",
    ),
    "Flask-SSE/gevent": (
        "gunicorn",
        "livestream.tools.sse_peer:create_app()",
        "gevent",
        "/stream",
    ),
    "Nchan": ("nchan", None, None, nchan.SUBSCRIBE),
}
NCHAN = "Nchan"
PEER = "Flask-SSE/gevent"
# a latency the client partly measured itself, and the note that says so
BEHIND_MARK = "*"
BEHIND_NOTE = (
    f"{BEHIND_MARK} the client's own lag p99 was {LAG_SHARE:.0%} of this p99 or "
    "more: these latencies are partly the client's"
)
# when a client fell behind, two p99s each within their own client's lag p99
# plus this many ms are alike as far as that client can tell: the server's
# part is under what a client tick resolves (LAG_FLOOR_MS)
P99_MARGIN_MS = LAG_FLOOR_MS
# the loads: (clients, messages a second)
LOADS = [(1000, 10), (1000, 100), (5000, 10), (10000, 1)]
# until every client is ready, a warm-up message this often (seconds): a
# client counts as ready once one reaches it, so the run starts on streams
# that are open end to end, not on connections still being accepted
WARMUP_EVERY = 0.5
# after the last warm-up, before the quiet feed is measured: the warm-ups
# still on their way to the clients are not idle work
SETTLE = 0.5
# how long a server may take to answer once started: gunicorn's four workers
# boot in seconds, but took over 20 on this two-core machine shared with
# browser tests
START_TIMEOUT = 60.0
# descriptors a process needs besides its connections (logs, pipes, Redis)
SPARE_FILES = 64


def connections_per_worker(clients, workers, kind):
    """What each worker is allowed to hold at once (``--worker-connections``,
    ``worker_connections``)."""
    if kind == "nchan":
        # nginx does not spread connections evenly: one worker may take all
        return clients + 100
    return clients // workers + 100  # room for an uneven spread


def open_files_needed(clients, workers, per_process, kind):
    """The open-file limit the run needs: the most any one of its processes
    (a worker, or a client process) holds at once."""
    return max(connections_per_worker(clients, workers, kind), per_process) + (
        SPARE_FILES
    )


class _Server:
    """A started contender: where its stream is, how to publish, its processes."""

    def __init__(self, service, path, send, close):
        self.service, self.path, self.send, self.close = service, path, send, close
        import psutil

        self.master = psutil.Process(service.process.pid)
        self.refresh()

    def refresh(self):
        """Look for the workers again: gunicorn's boot after its first answer."""
        self.processes = [self.master, *self.master.children(recursive=True)]

    def cpu_seconds(self):
        import psutil

        total = 0.0
        for process in self.processes:
            try:
                times = process.cpu_times()
            except psutil.Error:  # a worker that ended counts nothing
                continue
            total += times.user + times.system
        return total

    def worker_mb(self):
        return sorted(
            round(worker.memory_info().rss / 2**20) for worker in self.master.children()
        )


@contextlib.contextmanager
def _serve(server, clients, workers, scratch):
    kind, app, worker_class, path = SERVERS[server]
    connections = connections_per_worker(clients, workers, kind)
    if kind == "nchan":
        with nchan.start_nchan(
            workers=workers,
            connections=connections,
            backlog=clients * 2,
            timeout=START_TIMEOUT,
        ) as service:
            publisher = nchan.Publisher(service.url)
            send = _json(publisher)
            yield _Server(service, path, send, publisher.close), None
        return
    with (
        start_redis() as redis_service,
        open(Path(scratch) / "gunicorn.log", "wb") as log,
        start_gunicorn(
            workers=workers,
            connections=connections,
            redis_url=redis_service.url,
            app=app,
            worker_class=worker_class,
            log=log,
            extra=("--backlog", str(clients * 2)),
            timeout=START_TIMEOUT,
        ) as service,
    ):
        if server.startswith("Flask-SSE"):
            from . import sse_peer

            peer = sse_peer.create_app(redis_service.url)
            yield (
                _Server(service, path, lambda m: sse_peer.publish(peer, m), _nothing),
                redis_service,
            )
        else:
            client = connect(redis_service.url)
            send = lambda message: publish(message, client=client)  # noqa: E731
            yield _Server(service, path, send, client.close), redis_service


def _nothing():
    pass


def _json(post):
    import json

    return lambda message: post(json.dumps(message))


def _wait_ready(group, send, clients, deadline):
    ready = 0
    while ready < clients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready} of {clients} clients were ready")
        send({"warmup": True})
        ready = group.ready(WARMUP_EVERY)
    group.go()


def _machine_cpu():
    import psutil

    t = psutil.cpu_times()
    # steal: time the host gave to other machines, which ours had to wait out
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def _cpu_of(pids):
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def run_fanout(
    clients=1000,
    workers=4,
    rate=100.0,
    seconds=10.0,
    server="livestream/gthread",
    connect_timeout=120.0,
    idle=0.0,
    per_process=None,
):
    """Run one server under one load, once; the figures, as a dict.

    ``idle``: seconds the clients wait on a quiet feed first, while the
    server's CPU is measured (0: no such phase). A server that cannot run here
    (nginx or its Nchan module missing, too low an open-file limit) gives a
    row that says why under ``"did not run"``.
    """
    from .fanout_clients import IDLE_TIMEOUT, PER_PROCESS

    per_process = per_process or PER_PROCESS
    kind = SERVERS[server][0]
    row = {"server": server, "clients": clients, "workers": workers, "rate /s": rate}
    reason = nchan.missing() if kind == "nchan" else None
    limit = raise_open_files()
    needed = open_files_needed(clients, workers, min(per_process, clients), kind)
    if reason is None and limit < needed:
        reason = (
            f"needs an open-file limit of {needed} (hard limit {limit}): "
            f"raise it, e.g. `ulimit -Hn {needed}` as root"
        )
    if reason:
        return {**row, "did not run": reason}
    group = ClientGroup(clients, per_process, timeout=IDLE_TIMEOUT + idle)
    with (
        contextlib.closing(group),
        tempfile.TemporaryDirectory(prefix="livestream-fanout-") as scratch,
        _serve(server, clients, workers, scratch) as (contender, redis_service),
    ):
        host, port = contender.service.url.removeprefix("http://").split(":")
        group.connect(host, int(port), contender.path)
        send = contender.send
        try:
            _wait_ready(group, send, clients, time.monotonic() + connect_timeout)
            contender.refresh()  # workers forked after the first one answered
            idle_cores = None
            if idle > 0:
                time.sleep(SETTLE)
                before = contender.cpu_seconds()
                time.sleep(idle)
                idle_cores = (contender.cpu_seconds() - before) / idle
            rest_pids = [*group.pids] + (
                [redis_service.process.pid] if redis_service else []
            )
            began = time.monotonic()
            server_before = contender.cpu_seconds()
            clients_before = _cpu_of(group.pids)
            rest_before = _cpu_of(rest_pids) + time.process_time()
            machine_before = _machine_cpu()
            count = int(rate * seconds)
            for n in range(count):
                # publish on a schedule, not "sleep after each": the rate holds
                delay = began + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                send({"n": n, "t": time.time()})
            send({"end": True})
            # a publisher held up by its server publishes slower than `rate`:
            # its messages are late before they are sent
            publishing = time.monotonic() - began
            summary = group.finish(count, connect_timeout)
            elapsed = time.monotonic() - began
            server_cpu = contender.cpu_seconds() - server_before
            client_cpu = _cpu_of(group.pids) - clients_before
            ours = _cpu_of(rest_pids) + time.process_time() - rest_before
            others = _machine_cpu() - machine_before - server_cpu - ours
            memory = contender.worker_mb()
        finally:
            contender.close()
        log = Path(scratch) / "gunicorn.log"
        timeouts = (
            log.read_text(errors="replace").count("WORKER TIMEOUT")
            if log.exists()
            else 0
        )
    summary.pop("clients")
    deliveries = summary["received"]
    behind = fell_behind(summary["lag p99 ms"], summary["p99 ms"])
    return {
        **row,
        "messages": count,
        "expected": count * clients,
        **summary,
        "client behind": behind,
        "server CPU s": server_cpu,
        "deliveries per CPU s": deliveries / server_cpu if server_cpu > 0 else None,
        "µs per delivery": server_cpu / deliveries * 1e6 if deliveries else None,
        "idle cores": idle_cores,
        "worker MB": memory,
        "worker timeouts": timeouts,
        "seconds": round(elapsed, 1),
        "publishing s": round(publishing, 1),
        "client cores": client_cpu / elapsed,
        # everything the run used: server, redis, clients, publisher
        "run CPU": (server_cpu + ours) / elapsed,
        "others' CPU": max(0.0, others) / elapsed,
    }


def _latency(key):
    """The latency, marked when the client fell behind (see BEHIND_NOTE)."""

    def show(row):
        if row.get(key) is None:
            return "-"
        return f"{row[key]:,.0f}" + (BEHIND_MARK if row.get("client behind") else "")

    return show


def _cell(key, style):
    # a cell that may be missing or None: "-", as the table shows a missing one
    def show(row):
        value = row.get(key)
        return "-" if value is None else style.format(value)

    return show


COLUMNS = [
    ("server", "server", "{}"),
    ("clients", "clients", "{:,}"),
    ("rate /s", "msg/s", "{:g}"),
    ("received", "delivered", None),
    ("complete", "complete, in order", None),
    ("p50 ms", "p50 ms", None),
    ("p99 ms", "p99 ms", None),
    ("server CPU s", "server CPU s", "{:.2f}"),
    ("deliveries per CPU s", "deliveries per CPU s", "{:,.0f}"),
    ("idle cores", "idle cores", "{:.3f}"),
    ("worker MB", "worst worker MB", lambda mb: str(max(mb)) if mb else "-"),
    ("lag p99 ms", "client lag p99 ms", "{:.0f}"),
    ("client busy", "busiest client process", "{:.0%}"),
    ("worker timeouts", "WORKER TIMEOUT", "{}"),
    ("publishing s", "publishing s", "{}"),
    ("others' CPU", "others' cores", "{:.2f}"),
    # why a server has no figures: it could not run here, or not under that load
    ("did not run", "did not run", "{}"),
]


def table(rows):
    """The rows as a Markdown table; latencies where the client fell behind are
    marked, with a note under the table that says what the mark means."""
    shown = []
    for row in rows:
        row = dict(row)
        if "received" in row:
            row["received"] = f"{row['received']:,}/{row['expected']:,}"
            row["complete"] = f"{row['complete']:,}/{row['clients']:,}"
            row["p50 ms"] = _latency("p50 ms")(row)
            row["p99 ms"] = _latency("p99 ms")(row)
        shown.append(row)
    columns = [(key, title, style or "{}") for key, title, style in COLUMNS]
    text = markdown_table(shown, columns)
    if any(row.get("client behind") and "received" in row for row in rows):
        text += "\n\n" + BEHIND_NOTE
    return text


def _load(row):
    return (row["clients"], row["rate /s"])


def _ran(row):
    return "did not run" not in row


def _cost_growth(rows):
    """Each row with more clients than the fewest, paired with the row of the
    fewest clients at the nearest rate: ((load, µs), (base load, µs)) each.

    The nearest rate, since a message's cost is shared by the clients it goes
    to, and at a higher rate a worker writes more messages at once."""
    import math

    costs = {_load(r): r["µs per delivery"] for r in rows if r.get("µs per delivery")}
    if len({clients for clients, _ in costs}) < 2:
        return []
    fewest = min(clients for clients, _ in costs)
    bases = [load for load in costs if load[0] == fewest]
    pairs = []
    for load, cost in costs.items():
        if load[0] == fewest:
            continue
        base = min(bases, key=lambda b: abs(math.log(b[1] / load[1])))
        pairs.append(((load, cost), (base, costs[base])))
    return pairs


def _load_name(load):
    return f"{load[0]:,} × {load[1]:g}/s"


def headline(rows):
    """Per load: livestream's deliveries per server CPU-second, as a share of
    Nchan's (and Flask-SSE's beside it)."""
    lines = []
    for load in dict.fromkeys(_load(row) for row in rows):
        at = {r["server"]: r for r in rows if _load(r) == load and _ran(r)}
        base = at.get(NCHAN)
        if base is None or not base.get("deliveries per CPU s"):
            lines.append(f"{_load_name(load)}: no Nchan figure to compare with")
            continue
        parts = [f"Nchan {base['deliveries per CPU s']:,.0f} deliveries per CPU-second"]
        for name, row in at.items():
            if name != NCHAN and row.get("deliveries per CPU s"):
                share = row["deliveries per CPU s"] / base["deliveries per CPU s"]
                parts.append(f"{name} {share:.0%} of it")
        lines.append(f"{_load_name(load)}: " + "; ".join(parts))
    return lines


PASS, MISS, UNMEASURED = "PASS", "MISS", "NOT MEASURED"


def targets(rows, server):
    """Issue 19's targets for ``server``: (verdict, what, figures) each."""
    mine = [r for r in rows if r["server"] == server]
    ran = [r for r in mine if _ran(r)]
    others = {
        (r["server"], _load(r)): r for r in rows if _ran(r) and r["server"] != server
    }
    checks = []

    # every client gets every message in order at every load; ≤ 100 MB at 5,000
    what = (
        "every client gets every message in order at every load, "
        "no worker over 100 MB at 5,000 clients"
    )
    if not ran:
        checks.append((UNMEASURED, what, "no load ran"))
    else:
        figures, met = [], len(ran) == len(mine)
        for r in mine:
            if not _ran(r):
                figures.append(f"{_load_name(_load(r))}: did not run")
                continue
            whole = r["received"] == r["expected"] and r["complete"] == r["clients"]
            met = met and whole
            text = (
                f"{_load_name(_load(r))}: {r['complete']:,}/{r['clients']:,} complete"
            )
            if r["clients"] >= 5000:
                text += f", worst worker {max(r['worker MB'])} MB"
            if r["clients"] == 5000:  # the target's load; 10,000's is shown
                met = met and max(r["worker MB"]) <= 100
            figures.append(text)
        if not any(r["clients"] == 5000 for r in ran):
            figures.append("no 5,000-client load: memory not judged")
        checks.append((PASS if met else MISS, what, "; ".join(figures)))

    # deliveries per CPU-second: ≥ half of Nchan's, ahead of Flask-SSE's
    what = (
        "deliveries per server CPU-second at least half of Nchan's "
        "and ahead of Flask-SSE's at every load"
    )
    figures, met, measured = [], True, bool(ran)
    failed = {
        _load(r): r["did not run"] for r in rows if r["server"] == PEER and not _ran(r)
    }
    for r in ran:
        nchan_row = others.get((NCHAN, _load(r)))
        peer = others.get((PEER, _load(r)))
        # a peer that could not serve the load is behind by definition: the
        # load is judged against Nchan alone
        peer_failed = peer is None and _load(r) in failed
        if nchan_row is None or (peer is None and not peer_failed):
            measured = False
            missing = "Nchan" if nchan_row is None else "Flask-SSE"
            figures.append(f"{_load_name(_load(r))}: no {missing} row")
            continue
        ours = r["deliveries per CPU s"]
        share = ours / nchan_row["deliveries per CPU s"]
        met = met and share >= 0.5
        text = f"{_load_name(_load(r))}: {ours:,.0f}, {share:.0%} of Nchan's, "
        if peer_failed:
            text += f"Flask-SSE did not serve this load ({failed[_load(r)]})"
        else:
            ahead = ours / peer["deliveries per CPU s"]
            met = met and ahead > 1
            text += f"{ahead:.2f}× Flask-SSE's"
        figures.append(text)
    verdict = (PASS if met else MISS) if measured else UNMEASURED
    checks.append((verdict, what, "; ".join(figures) or "no load ran"))

    # cost per delivery flat from 1,000 to 10,000 clients
    what = "cost per delivery within 1.5× from 1,000 to 10,000 clients"
    growth = _cost_growth(ran)
    if not growth:
        checks.append((UNMEASURED, what, "needs loads of two client counts"))
    else:
        # Nchan's own growth beside ours: what the C server shows at those loads
        nchan_rows = [r for r in rows if r["server"] == NCHAN and _ran(r)]
        reference = {
            load: cost / base_cost
            for (load, cost), (_, base_cost) in _cost_growth(nchan_rows)
        }
        figures = []
        for (load, cost), (base, base_cost) in growth:
            text = (
                f"{_load_name(load)} {cost:.1f} µs, "
                f"{cost / base_cost:.2f}× {_load_name(base)}'s {base_cost:.1f}"
            )
            if load in reference:
                text += f" (Nchan {reference[load]:.2f}×)"
            figures.append(text)
        met = all(cost / base_cost <= 1.5 for (_, cost), (_, base_cost) in growth)
        checks.append((PASS if met else MISS, what, "; ".join(figures)))

    # idle clients cost nothing
    what = "5,000 idle clients cost the workers at most 0.05 cores"
    idle = [r for r in ran if r["clients"] == 5000 and r["idle cores"] is not None]
    if not idle:
        checks.append((UNMEASURED, what, "no 5,000-client load with --idle"))
    else:
        worst = max(r["idle cores"] for r in idle)
        checks.append((PASS if worst <= 0.05 else MISS, what, f"{worst:.3f} cores"))

    # p99 at 1,000 × 10/s within 1.5× of Nchan's
    what = "p99 at 1,000 × 10/s within 1.5× of Nchan's"
    ours = next((r for r in ran if _load(r) == (1000, 10)), None)
    theirs = others.get((NCHAN, (1000, 10)))
    if ours is None or theirs is None:
        checks.append((UNMEASURED, what, "needs the 1,000 × 10/s load with Nchan"))
    elif ours["p99 ms"] is None or theirs["p99 ms"] is None:
        checks.append((UNMEASURED, what, "no p99: nothing was received"))
    else:
        checks.append((_p99_verdict(ours, theirs), what, _p99_figures(ours, theirs)))
    return checks


def _p99_verdict(ours, theirs):
    """PASS if our p99 is within 1.5× of Nchan's. When a client fell behind,
    also PASS if each p99 is within its own client's lag p99 plus
    P99_MARGIN_MS: both are then as low as that client can tell."""
    if ours["p99 ms"] <= 1.5 * theirs["p99 ms"]:
        return PASS
    behind = ours["client behind"] or theirs["client behind"]
    alike = all(
        row["p99 ms"] <= row["lag p99 ms"] + P99_MARGIN_MS for row in (ours, theirs)
    )
    return PASS if behind and alike else MISS


def _p99_figures(ours, theirs):
    ratio = ours["p99 ms"] / theirs["p99 ms"] if theirs["p99 ms"] else float("inf")
    text = (
        f"{ours['p99 ms']:.0f} ms, Nchan's {theirs['p99 ms']:.0f} ms ({ratio:.2f}×); "
        f"client lag p99 {ours['lag p99 ms']:.0f} ms beside ours, "
        f"{theirs['lag p99 ms']:.0f} ms beside Nchan's"
    )
    if ours["client behind"] or theirs["client behind"]:
        text += (
            f"; a client fell behind: also a pass if each p99 is within its "
            f"lag p99 + {P99_MARGIN_MS:g} ms"
        )
    return text


def report(rows):
    """The headline, the table, and a line per target for each livestream server."""
    lines = [*headline(rows), "", table(rows), ""]
    for server in dict.fromkeys(r["server"] for r in rows):
        if server.startswith("livestream"):
            for verdict, what, figures in targets(rows, server):
                lines.append(f"{verdict} {server}: {what}: {figures}")
    return "\n".join(lines)


def parse_loads(text):
    """``"1000x10,5000x10"``: [(1000, 10.0), (5000, 10.0)]; ValueError naming
    the load that is not one."""
    loads = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        clients, _, rate = part.lower().partition("x")
        try:
            load = (int(clients), float(rate))
        except ValueError:
            raise ValueError(f"{part!r} is not CLIENTSxRATE, e.g. 1000x10") from None
        if load[0] < 1 or load[1] <= 0:
            raise ValueError(f"{part!r}: clients and rate must be above 0")
        loads.append(load)
    if not loads:
        raise ValueError("no load given")
    return loads


def _progress(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # a tool still runs without it, with no bar
        return contextlib.nullcontext(None)
    return tqdm(total=total, file=sys.stderr, unit="run")


def run_all(loads, servers, workers=4, seconds=10.0, idle=5.0, per_process=None):
    """Every server under every load; the rows."""
    rows = []
    with _progress(len(loads) * len(servers)) as bar:
        for clients, rate in loads:
            for server in servers:
                label = f"{server}: {clients:,} × {rate:g}/s"
                if bar is None:
                    print(f"{label} …", file=sys.stderr)
                else:
                    bar.set_description(label)
                try:
                    row = run_fanout(
                        clients,
                        workers,
                        rate,
                        seconds,
                        server,
                        idle=idle,
                        per_process=per_process,
                    )
                except RuntimeError as error:
                    # a row all the same: a peer that fails under a load is a result
                    row = {"server": server, "clients": clients, "rate /s": rate}
                    row["did not run"] = str(error).replace("|", "/")[:160]
                if "did not run" in row:
                    print(
                        f"  {server} did not run: {row['did not run']}", file=sys.stderr
                    )
                rows.append(row)
                if bar is not None:
                    bar.update()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="livestream-fanout", description=__doc__)
    parser.add_argument(
        "--loads",
        default=",".join(f"{c}x{r:g}" for c, r in LOADS),
        help="comma-separated CLIENTSxRATE (messages a second), default: %(default)s",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="of publishing")
    parser.add_argument(
        "--idle",
        type=float,
        default=5.0,
        help="seconds on a quiet feed first, measuring the server's CPU (0: none)",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--per-process",
        type=int,
        default=None,
        help="clients in each client process (default: fanout_clients.PER_PROCESS)",
    )
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
    try:
        loads = parse_loads(args.loads)
    except ValueError as error:
        parser.error(f"--loads: {error}")
    for name in ("workers", "seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be above 0")
    if args.idle < 0:
        parser.error("--idle must be 0 or more")
    if args.per_process is not None and args.per_process < 1:
        parser.error("--per-process must be above 0")
    # the machine beside the figures: a shared machine's swing between runs
    started = os.getloadavg()
    rows = run_all(
        loads, servers, args.workers, args.seconds, args.idle, args.per_process
    )
    print(report(rows))
    print(
        f"\n{os.cpu_count()} cores; load average "
        + "/".join(f"{x:.1f}" for x in started)
        + " when the run began, "
        + "/".join(f"{x:.1f}" for x in os.getloadavg())
        + " when it ended (1, 5, 15 minutes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
