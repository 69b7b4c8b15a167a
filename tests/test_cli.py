"""``python -m livestream`` serves the gallery and stops cleanly on Ctrl-C."""

import re
import signal
import subprocess
import sys

import requests


def start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "livestream", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serves_the_gallery_until_ctrl_c():
    process = start("--port", "0", "--count", "3", "--interval", "0")
    try:
        # the process prints this once it serves, or exits: readline returns
        line = process.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+)/", line).group(1)
        assert process.stdout.readline() == "livestream: press Ctrl-C to stop\n"
        gallery = requests.get(url + "/", timeout=5)
        assert gallery.status_code == 200
        assert "Every technique, side by side" in gallery.text
        assert requests.get(url + "/stream/ndjson", timeout=5).text.count("\n") == 3
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 0, err
    assert out == "livestream: stopped\n"
    assert "Traceback" not in err


def test_a_taken_port_is_a_clear_error(held_port):
    port = held_port
    result = subprocess.run(
        [sys.executable, "-m", "livestream", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use by another program" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_options_are_usage_errors():
    result = subprocess.run(
        [sys.executable, "-m", "livestream", "--interval", "90"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "STREAM_INTERVAL: interval must be a number of seconds from 0 to 60" in (
        result.stderr
    )
