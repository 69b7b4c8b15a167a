"""200 clients at once on one server: each gets every message once, in order;
and a crowd arriving at once, timed to its first bytes."""

import socket
import threading

import pytest

from livestream import create_app, serve
from livestream.httpd import HardenedServer, listen
from livestream.tools.load import (
    ARRIVAL_PATHS,
    main,
    numbers,
    numbers_in,
    run_arrivals,
    run_load,
)


def test_200_clients_get_every_message_in_order():
    with serve(create_app(numbers, TESTING=True)) as server:
        result = run_load(server, clients=200, messages=20, interval=0.005)
    assert result["failed clients"] == 0
    assert result["received"] == 200 * 20
    assert result["lost"] == 0
    assert result["out of order"] == 0
    assert result["duplicated"] == 0


def test_the_load_command_prints_its_table(capsys):
    assert main(["--clients", "5", "--messages", "3", "--interval", "0"]) == 0
    header, rule, row = capsys.readouterr().out.splitlines()
    assert header.startswith("| clients | messages each |")
    assert row.startswith("| 5 | 3 | 0.0 | 15 | 0 | 0 | 0 | 0 |")


def test_arrivals_report_first_bytes_completions_and_drops():
    # a crowd from a process of its own: every client is timed to its first
    # byte and checked for every number in order, on NDJSON and SSE alike
    with serve(create_app(numbers, TESTING=True)) as server:
        rows = [
            run_arrivals(server, path, clients=40, messages=3, interval=0.01)
            for path in ARRIVAL_PATHS
        ]
    for row in rows:
        assert row["completed"] == 40, row
        assert row["dropped"] == row["refused (503)"] == row["no first byte"] == 0
        assert 0 < row["first byte p50 s"] <= row["first byte max s"]


def test_arrivals_count_the_clients_the_cap_refused_as_dropped():
    with serve(create_app(numbers, TESTING=True), max_connections=5) as server:
        row = run_arrivals(server, "/stream/sse", clients=30, messages=3, interval=0.3)
    assert row["refused (503)"] > 0
    assert row["dropped"] == 30 - row["completed"] >= row["refused (503)"]
    assert row["completed"] >= 5


def test_numbers_in_reads_what_a_stream_carried_and_whether_it_ended():
    assert numbers_in(b"0\n1\n2\n", "ndjson") == ([0, 1, 2], True)
    assert numbers_in(b"0\n1", "ndjson") == ([0, 1], False)
    sse = b"retry: 1000\nid: 0\ndata: 0\n\nid: 1\ndata: 1\n\nevent: end\ndata: \n\n"
    assert numbers_in(sse, "sse") == ([0, 1], True)
    assert numbers_in(sse[:30], "sse") == ([0], False)


def test_the_load_command_refuses_a_crowd_of_nobody(capsys):
    with pytest.raises(SystemExit):
        main(["--arrivals", "0"])
    assert "--arrivals must be at least 1" in capsys.readouterr().err


def test_one_wake_of_the_accepting_loop_takes_the_whole_backlog():
    # a crowd is accepted in a batch, and an empty backlog ends the batch
    # instead of blocking the loop
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    listener = listen("127.0.0.1", 0)
    server = HardenedServer(
        "127.0.0.1", listener.getsockname()[1], app, fd=listener.fileno()
    )
    listener.close()
    clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    try:
        for client in clients:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        waking = threading.Thread(target=server._handle_request_noblock, daemon=True)
        waking.start()
        waking.join(5)
        assert not waking.is_alive(), "the accepting loop blocked on an empty backlog"
        for client in clients:
            client.settimeout(5)
            assert client.recv(100).startswith(b"HTTP/1.0 200")
    finally:
        for client in clients:
            client.close()
        server.server_close()
