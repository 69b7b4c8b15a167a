import pytest

from livestream.tools.chromium import (
    chromium_path,
    main,
    missing_packages,
    what_to_install,
)
from livestream.tools.report import percentile
from livestream.tools.timing import latency_summary, table


def test_latency_summary_pairs_yields_with_arrivals():
    summary = latency_summary([1.0, 2.0, 3.0], [1.1, 2.3, 3.2])
    assert summary["messages"] == 3
    assert summary["lost"] == 0
    assert summary["first"] == pytest.approx(0.1)
    assert summary["p50"] == pytest.approx(0.2)
    assert summary["max"] == pytest.approx(0.3)


def test_a_missing_arrival_is_a_loss():
    summary = latency_summary([1.0, 2.0, 3.0], [1.5])
    assert summary["lost"] == 2
    assert summary["p99"] == pytest.approx(0.5)
    assert latency_summary([1.0], []) == {"messages": 1, "lost": 1}


def test_table():
    rows = [
        {
            "page": "/xhr",
            "messages": 2,
            "lost": 0,
            "first": 0.01,
            "p50": 0.002,
            "p99": 0.02,
            "max": 0.02,
        },
        {"page": "/iframe", "messages": 2, "lost": 2},
    ]
    frame = table(rows)
    # a row per page, the times in the milliseconds the headers say
    assert list(frame.index) == ["/xhr", "/iframe"]
    assert list(frame.columns) == [
        "messages", "lost", "first ms", "p50 ms", "p99 ms", "max ms"
    ]  # fmt: skip
    assert frame.loc["/xhr"].tolist() == [2, 0, 10, 2, 20, 20]
    # a page that lost every message has no times, not zeros
    assert frame.loc["/iframe"].isna().tolist() == [False, False] + [True] * 4


def test_chromium_path_from_the_environment(monkeypatch, tmp_path):
    browser = tmp_path / "my-chromium"
    browser.write_text("")
    monkeypatch.setenv("LIVESTREAM_CHROMIUM", str(browser))
    assert chromium_path() == str(browser)
    monkeypatch.setenv("LIVESTREAM_CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="LIVESTREAM_CHROMIUM"):
        chromium_path()


def test_percentile_by_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError):
        percentile([], 50)


def test_missing_packages_looks_at_the_machine(monkeypatch, tmp_path):
    monkeypatch.delenv("LIVESTREAM_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with none of them
    missing = missing_packages()
    assert missing[:2] == ["chromium", "redis-server"]
    (tmp_path / "redis-server").write_text("")
    (tmp_path / "redis-server").chmod(0o755)
    assert missing_packages() == [name for name in missing if name != "redis-server"]


def test_what_to_install_is_one_line():
    line = what_to_install(["chromium", "redis-server", "nginx"])
    assert "\n" not in line
    assert "lacks chromium, redis-server, nginx:" in line
    assert line.endswith("apt-get install chromium redis-server nginx)")
    assert "install it " in what_to_install(["redis-server"])


@pytest.mark.browser
@pytest.mark.redis
@pytest.mark.nginx
def test_with_deps_installs_nothing_on_a_machine_that_has_both(capsys):
    # this machine has its Chromium, redis-server and nginx: no apt-get
    assert missing_packages() == []
    assert main(["--with-deps"]) == 0
    assert capsys.readouterr().out.startswith("livestream: using the Chromium at ")
