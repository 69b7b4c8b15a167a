"""The benchmark's arithmetic, and a quick run of it in Chromium."""

import csv
import io

import pandas as pd
import pytest

from livestream.tools.bench import main, markdown, table, targets, to_csv


def row(technique, **figures):
    return {"technique": technique, **figures}


def test_targets_say_met_or_missed():
    rows = [
        row("sse", p99=0.004, first=0.025, **{"per second": 30_000}),
        row("fetch", p99=0.020, first=0.010, **{"per second": 40_000}),
    ]
    lines = targets(rows)
    assert (
        "met    sse     p99 latency at 50 messages/s: 4.0 ms (target <= 10 ms)" in lines
    )
    assert "missed sse     first message: 25.0 ms (target <= 20 ms)" in lines
    assert "met    sse     messages/s to the page: 30,000 (target >= 20,000)" in lines
    assert (
        "missed fetch   p99 latency at 50 messages/s: 20.0 ms (target <= 15 ms)"
        in lines
    )
    assert "missed fetch   messages/s to the page: 40,000 (target >= 50,000)" in lines
    # techniques the run left out have no lines
    assert not any(" xhr " in line for line in lines)


def test_memory_growth_is_a_ratio():
    memory = {"heap MB @1000": 2.0, "heap MB @100000": 3.0, "nodes @1000": 100}
    lines = targets(
        [
            row("fetch", **memory, **{"nodes @100000": 500}),
            row("xhr", **memory, **{"nodes @100000": 150}),
            row("sse", **memory),  # a partial row: nothing to compare
            # the server bounds the htmx page's log: a target, like fetch's
            row("htmx", **memory, **{"nodes @100000": 100}),
        ]
    )
    assert lines == [
        "missed fetch   memory, 1,000 to 100,000 messages: heap x1.5, nodes x5.0"
        " (target <= 2x)",
        "report xhr     memory, 1,000 to 100,000 messages: heap x1.5, nodes x1.5",
        "met    htmx    memory, 1,000 to 100,000 messages: heap x1.5, nodes x1.0"
        " (target <= 2x)",
    ]


def test_markdown_and_csv():
    rows = [
        row("xhr", first=0.0123, p50=0.001, lost=0, latencies=[0.1, 0.2]),
        row("sse", p50=0.002, lost=1, **{"heap MB @1000": 1.25, "nodes @1000": 3072}),
    ]
    lines = markdown(rows).splitlines()
    assert lines[0].startswith("| technique | first ms | p50 ms |")
    assert lines[0].endswith("| heap MB @1000 | nodes @1000 |")
    assert lines[2].startswith("| xhr | 12.3 | 1.0 | - |")
    assert lines[3].endswith("| 1.2 | 3,072 |")
    # the same figures as a DataFrame, for a notebook: numbers, not text
    frame = table(rows)
    assert frame.loc["xhr", "first ms"] == 12.3
    assert frame.loc["sse", "nodes @1000"] == 3072
    assert frame.loc["sse", "first ms"] is pd.NA
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[1]["nodes @1000"] == "3072"
    assert "latencies" not in parsed[0]


@pytest.mark.browser
def test_a_quick_run_sees_every_message(capsys):
    args = ["--quick", "--techniques", "fetch,sse", "--count", "20", "--burst", "2000"]
    assert main([*args, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["technique"] for r in rows] == ["fetch", "sse"]
    for result in rows:
        assert result["messages"] == "20"
        assert result["lost"] == "0"
        assert result["burst seen"] == "2000"
        assert float(result["server cpu s / 10k"]) > 0
        assert int(result["nodes @10000"]) > 0


@pytest.mark.browser
def test_a_picture_technique_is_measured_by_its_frames(capsys):
    # no page can time a frame: curl reads them, the server's cost is counted
    assert main(["--quick", "--techniques", "mjpeg", "--frames", "40", "--csv"]) == 0
    (result,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert result["frames"] == "41"  # and the one that says Done
    assert float(result["frames/s"]) > 0
    assert float(result["server ms / frame"]) > 0
    assert 1 < float(result["KB / frame"]) < 100
    assert "p50" not in result


def test_picture_columns_only_where_a_row_has_them():
    assert "frames/s" not in markdown([row("xhr", p50=0.001)])
    figures = {"frames/s": 900.4, "server ms / frame": 1.234, "KB / frame": 13.25}
    lines = markdown([row("xhr", p50=0.001), row("mjpeg", **figures)]).splitlines()
    assert lines[0].endswith("| frames/s | server CPU ms/frame | KB/frame |")
    assert lines[3].startswith("| mjpeg | - |")
    assert lines[3].endswith("| 900 | 1.23 | 13.2 |")


@pytest.mark.parametrize(
    "args", [["--techniques", "fetch,smoke"], ["--techniques", ","], ["--rate", "0"]]
)
def test_bad_options_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_missed_target_says_why_from_the_run():
    latencies = [0.002, 0.030, 0.003, 0.004]
    lines = targets(
        [
            row("fetch", p99=0.030, latencies=latencies, first=0.025),
            row("sse", **{"per second": 10_000, "burst seen": 3_000}),
        ]
    )
    assert lines == [
        "missed fetch   p99 latency at 50 messages/s: 30.0 ms (target <= 15 ms)",
        "       why: 1 of 4 messages took longer than 15 ms; the p99 is the "
        "slowest: message 2, 30.0 ms",
        "missed fetch   first message: 25.0 ms (target <= 20 ms)",
        "       why: one sample, the message that opens the stream, while the "
        "page's reader is still starting; it varies from run to run",
        "missed sse     messages/s to the page: 10,000 (target >= 20,000)",
        "       why: this burst was 3,000 messages, over in 300 ms, so a pause of "
        "a few ms moves the rate a lot; the target is set for 100,000 "
        "(livestream-bench)",
    ]
