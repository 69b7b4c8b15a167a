"""What a server's streams and requests log as errors is kept in
``LiveServer.errors``, per server, and never printed into a notebook cell;
``display()``'s captions."""

import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from livestream import display
from livestream import server as server_module
from livestream.pitfalls import compress, create_pitfalls_app
from livestream.server import ErrorList
from testing_support import wait_until


def unplugged(count, interval):
    yield "first"
    raise ValueError("sensor unplugged")


@pytest.fixture
def loud_root():
    """A handler on the root logger that prints to stderr, as
    ``logging.basicConfig()`` in a notebook does: a record that reached it
    would show in the cell."""
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


def test_a_failing_source_lands_in_errors_with_its_traceback(
    live, loud_root, capfd, caplog
):
    server = live(unplugged)
    # the SSE stream says in-band that its source failed, and the app logs it
    text = requests.get(server.url + "/stream/sse", timeout=5).text
    assert "sensor unplugged" in text
    assert wait_until(lambda: server.errors, 2)
    [error] = server.errors
    assert "the stream's source failed" in error
    assert "Traceback (most recent call last)" in error
    assert "ValueError: sensor unplugged" in error
    assert "sensor unplugged" not in capfd.readouterr().err
    assert not [r for r in caplog.records if "source failed" in r.getMessage()]


def test_an_exception_that_breaks_a_stream_off_lands_in_errors(live, capfd):
    # a plain-text stream cannot say it failed: the exception escapes the app
    # and werkzeug logs it, with the request's traceback
    server = live(app=create_pitfalls_app())
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(server.url + "/no-context?name=ada", timeout=5)
    assert wait_until(lambda: server.errors, 2)
    assert "Working outside of request context" in server.errors[-1]
    assert "Traceback" in server.errors[-1]
    assert "Working outside" not in capfd.readouterr().err


def test_the_app_inside_middleware_is_found(live, loud_root, capfd):
    def unreadable(count, interval):
        raise OSError("no such sensor")  # in the view, before any stream

    server = live(app=compress(create_pitfalls_app(unreadable), streams=False))
    assert requests.get(server.url + "/nosniff", timeout=5).status_code == 500
    # Flask logs the view's exception to the app's logger, inside compress()
    assert wait_until(lambda: server.errors, 2)
    assert "OSError: no such sensor" in server.errors[-1]
    assert "no such sensor" not in capfd.readouterr().err


def test_nothing_prints_in_a_process_without_logging_set_up():
    # as in a kernel: no handler anywhere, so Flask and werkzeug add their
    # own, which print to stderr whatever record reaches them
    script = textwrap.dedent(
        """
        import requests
        from livestream import create_app, serve
        from livestream.pitfalls import create_pitfalls_app
        from testing_support import wait_until

        def unplugged(count, interval):
            yield "first"
            raise ValueError("sensor unplugged")

        server = serve(create_app(unplugged))
        pitfalls = serve(create_pitfalls_app())
        requests.get(server.url + "/stream/sse", timeout=5)
        try:
            requests.get(server.url + "/stream/text", timeout=5)
        except requests.exceptions.ChunkedEncodingError:
            pass
        try:
            requests.get(pitfalls.url + "/no-context", timeout=5)
        except requests.exceptions.ChunkedEncodingError:
            pass
        assert wait_until(lambda: len(server.errors) == 2, 2), server.errors
        assert wait_until(lambda: len(pitfalls.errors) == 1, 2), pitfalls.errors
        print("kept", len(server.errors), len(pitfalls.errors))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent.parent,  # where testing_support is
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "kept 2 1"
    assert run.stderr == ""


def test_each_server_keeps_its_own_errors(live):
    def failing(name):
        def source(count, interval):
            yield "first"
            raise ValueError(f"{name} failed")

        return source

    # both apps log to the same logger, livestream.app
    first, second = live(failing("first")), live(failing("second"))
    requests.get(first.url + "/stream/sse", timeout=5)
    requests.get(second.url + "/stream/sse", timeout=5)
    requests.get(second.url + "/stream/sse", timeout=5)
    assert wait_until(lambda: len(first.errors) == 1 and len(second.errors) == 2, 2)
    assert "first failed" in first.errors[0]
    assert not any("second failed" in error for error in first.errors)
    assert all("second failed" in error for error in second.errors)
    second.clear_errors()
    assert second.errors == []
    assert len(first.errors) == 1


def test_errors_keep_only_the_latest(live, monkeypatch):
    monkeypatch.setattr(server_module, "ERRORS_KEPT", 3)
    failures = iter(range(100))

    def numbered(count, interval):
        yield "first"
        raise ValueError(f"failure {next(failures)}")

    server = live(numbered)
    for _ in range(5):
        requests.get(server.url + "/stream/sse", timeout=5)
    assert wait_until(lambda: "failure 4" in "".join(server.errors), 2)
    numbers = [int(re.search(r"failure (\d+)", e).group(1)) for e in server.errors]
    assert numbers == [2, 3, 4]  # the newest last


def test_records_from_elsewhere_pass(live, caplog):
    server = live(unplugged)
    # the same logger, from a thread that serves no request: not the server's
    server.app.logger.error("logged by the notebook itself")
    assert server.errors == []
    assert [r.getMessage() for r in caplog.records] == ["logged by the notebook itself"]


def test_errors_show_one_after_another_in_a_notebook():
    pretty = pytest.importorskip("IPython.lib.pretty")
    errors = ErrorList(["one\nTraceback: a", "two\nTraceback: b"])
    assert pretty.pretty(errors) == "one\nTraceback: a\n\ntwo\nTraceback: b"
    assert pretty.pretty(ErrorList()) == "no errors"


def test_captions_show_above_their_frames_escaped():
    pages = display(
        "http://127.0.0.1:1/a",
        "http://127.0.0.1:1/b",
        captions=["without <b>the header</b>", None],
    )
    html = pages._repr_html_()
    first, second = html.split("</figure>")[:2]
    assert first.index("<figcaption") < first.index("<iframe")
    assert "without &lt;b&gt;the header&lt;/b&gt;" in first
    assert "<b>" not in html
    assert "<figcaption" not in second
    assert html.count("<iframe") == 2


def test_a_caption_count_that_does_not_match_the_pages_raises(live):
    server = live()
    with pytest.raises(ValueError, match=r"2 caption\(s\) for 1 page.*captions=\["):
        server.display("/xhr", captions=["one", "two"])
    with pytest.raises(ValueError, match="a list of one caption per page"):
        display("http://127.0.0.1:1/a", captions="alone")
    with pytest.raises(TypeError, match="each caption is a str"):
        display("http://127.0.0.1:1/a", captions=[3])
