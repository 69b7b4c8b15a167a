"""The README's commands are part of the product: check them."""

import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from livestream.tools.services import WORKER_CLASS
from livestream.tools.tutorial import jupyter_command

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def readme_command(marker):
    """The one command in the README's code block that follows ``marker``."""
    section = README[README.index(marker) :]
    block = re.search(r"```(?:bash|sh)\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1, lines
    return lines[0]


TUTORIAL = readme_command("Run the tutorial")
TESTS = readme_command("Run the tests")


def test_commands_set_up_their_own_environment():
    for command in (TUTORIAL, TESTS):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e ")
        # both make sure of a Chromium and a redis-server (see test_browser.py)
        assert " && .venv/bin/livestream-browser --with-deps && " in command
    assert TUTORIAL.endswith("&& .venv/bin/livestream-tutorial")
    assert TESTS.endswith("&& .venv/bin/python -m pytest")


def test_ci_runs_the_readme_test_command():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line.startswith(TESTS) for line in lines)


def test_ci_lints_before_the_long_run():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    run = next(i for i, line in enumerate(lines) if line.startswith(TESTS))
    for lint in (".venv/bin/ruff check .", ".venv/bin/ruff format --check ."):
        assert lines.index(lint) < run, lint


def test_the_readme_is_a_front_door():
    # what this is, the two commands, the lessons, a short example, links:
    # the reference lives in docs/
    assert len(README.encode()) <= 12 * 1024


def test_the_lessons_table_has_a_row_for_every_lesson():
    rows = re.findall(r"^\| `(\w+\.ipynb)` \|", README, re.M)
    assert rows == sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))


def test_lesson_07_is_said_to_use_the_workers_it_starts():
    # the lesson starts gunicorn with start_gunicorn()'s default worker class
    (row,) = [line for line in README.splitlines() if "`07_scale_out.ipynb`" in line]
    assert f"gunicorn with `{WORKER_CLASS}` workers" in row


def last_step(command):
    """The command's final step, run with this interpreter's environment."""
    step = command.rsplit(" && ", 1)[1]
    return step.replace(".venv/bin/", f"{Path(sys.executable).parent}/").split()


@pytest.mark.browser
def test_the_browser_step_finds_a_chromium():
    step = TESTS.split(" && ")[2]
    assert step == ".venv/bin/livestream-browser --with-deps"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "livestream-browser"), "--with-deps"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def answer(url, deadline):
    """GET ``url`` once its server accepts connections, until ``deadline``."""
    while True:
        try:
            return requests.get(url, timeout=10)
        except requests.ConnectionError:
            # the address is printed as the server starts; it may not listen yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_tutorial_command_serves_the_notebooks():
    token = secrets.token_hex(8)
    jupyter = subprocess.Popen(
        [
            *last_step(TUTORIAL),
            "--no-browser",
            "--port=0",
            f"--IdentityProvider.token={token}",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )
    lines = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in jupyter.stderr], daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "JupyterLab did not print its address"
            assert jupyter.poll() is None, "JupyterLab exited"
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            url = found and found.group(1)
        contents = answer(f"{url}/api/contents?token={token}", deadline)
        assert contents.status_code == 200
        names = {item["name"] for item in contents.json()["content"]}
        assert {"01_xhr.ipynb", "02_iframe.ipynb"} <= names
        assert "pyproject.toml" not in names  # the root is notebooks/, not the repo
    finally:
        jupyter.send_signal(signal.SIGTERM)
        try:
            jupyter.wait(timeout=10)
        except subprocess.TimeoutExpired:
            jupyter.kill()
            jupyter.wait()
        reader.join(timeout=10)
        jupyter.stderr.close()


def test_the_tutorial_opens_notebook_7_or_with_lab_jupyterlab(tmp_path):
    default = jupyter_command(tmp_path, ["--no-browser"])
    assert default[1:4] == ["-m", "notebook", str(tmp_path)]
    assert "--no-browser" in default
    lab = jupyter_command(tmp_path, ["--lab", "--port=0"])
    assert lab[1:4] == ["-m", "jupyterlab", str(tmp_path)]
    assert "--lab" not in lab
    assert "--port=0" in lab
