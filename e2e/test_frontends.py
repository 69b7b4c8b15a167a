"""Every lesson, Run All in the real front ends: JupyterLab and Notebook 7.

A learner opens a lesson and picks Run > Run All Cells. These tests do the
same in headless Chromium, wait until the kernel is idle and every cell has
run, then check that no cell shows an error or prints a traceback, that
every page the lesson shows inline streams (its count grows) or ends, unless
its caption says it is broken on purpose, and that the pages of each pair
differ the way the lesson says (read from each page's timeline).

A lesson declares a pair in the metadata of the code cell that shows it,
where the learner does not see it::

    "livestream": {"differ": [{"frames": [0, 1], "in": "spread"}]}

``frames`` are two of that cell's frames, in the order display() shows
them: first the page that shows the problem (the pitfall, "without"), then
the fix. ``in`` names the timeline's figure that tells them apart; the
problem page's figure is on the side PAIR_DIRECTION gives, unless
``"first_is": "larger"`` or ``"smaller"`` says otherwise.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from testing_support import tracebacks

from .helpers import Picture

pytestmark = pytest.mark.frontend

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
LESSONS = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
TOKEN = "livestream-frontend-test"

# the module that starts each front end, and where it opens a notebook
FRONTENDS = {
    "jupyterlab": ("jupyterlab", "lab/tree/{name}?reset"),
    "notebook7": ("notebook", "notebooks/{name}"),
}

SERVER_READY_WITHIN = 60.0
KERNEL_READY_WITHIN = 60.0
# Run All of the longest lesson (05 times every technique in Chromium) on a
# busy 2-core machine
LESSON_RUNS_WITHIN = 240.0

# the state of one inline page: its message count, and how it ended (if it
# did); the iframe page's outer document is skipped, its inner one counts; the
# MJPEG page's <img> has no text, its picture is read by its pixels
PAGE_STATE = """() => {
  const latest = document.getElementById("latest");
  const count = document.getElementById("count");
  const inner = document.getElementById("stream");
  const error = document.getElementById("error");
  return {
    wrapper: Boolean(inner && inner.tagName === "IFRAME" && !count),
    picture: Boolean(inner && inner.tagName === "IMG"),
    count: count ? Number(count.textContent) :
      document.querySelectorAll(".message").length,
    ended: document.getElementById("done") ? "Done" :
      latest && /^(Done|Stopped|Error)/.test(latest.textContent) ?
        latest.textContent : null,
    error: error ? error.textContent : null,
  };
}"""

# a page that fails or waits on purpose says so in its caption, in these words
ON_PURPOSE = "on purpose"

# the record a page's readout keeps of its messages (see static/readout.js):
# the #timeline element's data attributes, as numbers; the iframe page's is
# in its inner document
TIMELINE = """() => {
  const timeline = document.getElementById("timeline");
  if (!timeline) return null;
  const figures = {};
  for (const [name, value] of Object.entries(timeline.dataset))
    figures[name] = value === "" ? null : Number(value);
  return figures;
}"""

# how the page that shows a pair's problem differs from its fix, by default,
# in each of the timeline's figures: its first message later, its messages
# bunched (a shorter spread, fewer arrivals), a longer gap at a reconnect,
# more repeated, fewer shown
PAIR_DIRECTION = {
    "first": "larger",
    "spread": "smaller",
    "gap": "larger",
    "repeated": "larger",
    "count": "smaller",
    "arrivals": "smaller",
}
# the times (ms) of a pair must differ by this factor and this much at least,
# so that the difference shows at a glance and is not the machine's jitter
PAIR_FACTOR = 2.0
PAIR_MARGIN_MS = 200.0
# how long a pair's pages get to end before their timelines are compared
PAIR_ENDS_WITHIN = 30.0

# true once the page's count is above `seen`, or the page shows an end
GROWN = f"""(seen) => {{
  const state = ({PAGE_STATE})();
  return state.ended || state.count > seen;
}}"""

# Run All has finished: the kernel is idle, no cell waits to run, and one
# has run at least (the front end marks cells queued only once the kernel is
# ready, and Run All stops at a cell that fails)
RUN_FINISHED = r"""() => {
  const indicator = document.querySelector(".jp-Notebook-ExecutionIndicator");
  const prompts = [...document.querySelectorAll(".jp-CodeCell .jp-InputPrompt")]
    .map(p => p.textContent);
  return Boolean(indicator && indicator.dataset.status === "idle" &&
    prompts.some(p => /\d/.test(p)) && !prompts.some(p => p.includes("*")));
}"""


def poll(condition, timeout, what):
    """Poll ``condition()`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.1)


class FrontEnd:
    """A running Jupyter server (JupyterLab or Notebook 7) on a copy of the lessons."""

    def __init__(self, name, folder, process, port):
        self.name = name
        self.folder = folder
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def notebook_url(self, lesson):
        path = FRONTENDS[self.name][1].format(name=lesson)
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path}{sep}token={TOKEN}"

    def api(self, path, method="GET"):
        """Call the server's REST API; the decoded JSON answer, or None."""
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {TOKEN}"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_state(self, lesson):
        """The execution state of the kernel of ``lesson``'s session, if any."""
        for session in self.api("sessions"):
            if session["path"] == lesson:
                return session["kernel"]["execution_state"]
        return None

    def shut_down_kernels(self):
        """End every session, so a lesson's servers and streams end with it."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def answers(self):
        try:
            return self.api("status") is not None
        except (OSError, urllib.error.URLError):
            return False


def start_frontend(name, tmp):
    """Start JupyterLab or Notebook 7 on a copy of notebooks/, on a free port."""
    module = FRONTENDS[name][0]
    folder = tmp / "notebooks"
    shutil.copytree(NOTEBOOKS, folder)
    runtime = tmp / "runtime"
    # Jupyter's own state (settings, workspaces, the file naming its port)
    # stays in the temporary folder, apart from the learner's and other runs
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
    }
    log = open(tmp / "server.log", "w")  # noqa: SIM115  (closed with the server)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--port=0",  # the OS picks a free port; the runtime file names it
            f"--ServerApp.token={TOKEN}",
            f"--ServerApp.root_dir={folder}",
            "--allow-root",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def port():
        if process.poll() is not None:
            pytest.fail(f"{module} exited with code {process.returncode}")
        found = list(runtime.glob(f"jpserver-{process.pid}.json"))
        return found and json.loads(found[0].read_text() or "{}").get("port")

    try:
        frontend = FrontEnd(
            name, folder, process, poll(port, SERVER_READY_WITHIN, "no port")
        )
        poll(frontend.answers, SERVER_READY_WITHIN, f"{module} did not answer")
    except BaseException:
        process.kill()
        log.close()
        raise
    frontend.log = log
    return frontend


@pytest.fixture(scope="session", params=list(FRONTENDS))
def frontend(request, tmp_path_factory):
    """A real JupyterLab, then a real Notebook 7, each on a copy of the lessons."""
    frontend = start_frontend(request.param, tmp_path_factory.mktemp(request.param))
    yield frontend
    frontend.process.terminate()  # Jupyter shuts its kernels down on SIGTERM
    try:
        frontend.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        frontend.process.kill()
        frontend.process.wait()
    frontend.log.close()


@pytest.fixture
def lesson_page(page, frontend):
    """A fresh browser page; the lesson's kernel is shut down after the test."""
    yield page
    frontend.shut_down_kernels()


def run_all(page, frontend, lesson):
    """Run > Run All Cells, as a learner does, and wait until it has finished."""
    # a learner picks Run All once the kernel says it is idle
    poll(
        lambda: frontend.kernel_state(lesson) == "idle",
        KERNEL_READY_WITHIN,
        f"the kernel of {lesson} was not idle",
    )
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    try:
        # every cell is queued ([*]) or has run at once
        expect(prompts.first).not_to_have_text("[ ]:", timeout=30_000)
        page.wait_for_function(RUN_FINISHED, timeout=LESSON_RUNS_WITHIN * 1000)
    except (AssertionError, PlaywrightTimeoutError):
        shot = frontend.folder.parent / f"{lesson}.png"
        page.screenshot(path=shot)
        pytest.fail(
            f"Run All did not finish: the prompts read "
            f"{prompts.all_text_contents()} (screenshot: {shot})"
        )


def saved_notebook(page, frontend, lesson):
    """Save the notebook through the front end; the saved notebook, read back."""
    path = frontend.folder / lesson
    before = path.stat().st_mtime_ns
    page.locator(".jp-NotebookPanel-toolbar [data-command='docmanager:save']").click()

    def saved():
        # the file can change before the front end has finished writing it
        if path.stat().st_mtime_ns == before:
            return None
        try:
            return nbformat.read(path, as_version=4)
        except ValueError:  # nbformat.reader.NotJSONError among them
            return None

    return poll(saved, 30, f"{lesson} was not saved")


def inline_pages(page, expected):
    """Each frame that the lesson's cells put on the page, with its address.

    A front end may draw a cell's output only once the cell comes near the
    view, so each cell is scrolled into view first, as a reader does, until
    the ``expected`` frames are there; the frames inside them come too.
    """
    cells = page.locator(".jp-Notebook .jp-Cell")
    for k in range(cells.count()):
        cells.nth(k).scroll_into_view_if_needed()
    expect(page.locator(".jp-OutputArea-output iframe")).to_have_count(expected)
    for frame in page.frames:
        if frame != page.main_frame:
            # the frame's first document is about:blank until its page commits
            poll(lambda f=frame: f.url != "about:blank", 10, f"{frame.name} loaded")
    return [
        (frame.frame_element().get_attribute("src"), frame)
        for frame in page.frames
        if frame != page.main_frame
    ]


def frames_shown(notebook):
    """How many frames the notebook's outputs put on the page."""
    return sum(
        output.get("data", {}).get("text/html", "").count("<iframe")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def caption_of(frame):
    """The caption display() put above the frame (for a frame inside a
    page's frame, above that page's), or ""."""
    while frame.parent_frame and frame.parent_frame.parent_frame:
        frame = frame.parent_frame
    return frame.frame_element().evaluate(
        """frame => {
          const caption = frame.closest("figure")?.querySelector("figcaption");
          return caption ? caption.textContent : "";
        }"""
    )


def check_streams(frame):
    """The frame's page streams (its count grows) or shows its end, or its
    caption says it is broken on purpose; else why not."""
    why = stream_problem(frame)
    if why and ON_PURPOSE in caption_of(frame).lower():
        return None
    return why


def stream_problem(frame):
    """Why the frame's page neither streams (its count grows) nor shows its
    end, if it does not."""
    if frame.url.startswith("chrome-error:"):
        # Chromium's own page: the connection was refused or reset
        text = frame.evaluate("document.body.innerText")
        return f"shows Chromium's error page: {text.splitlines()[0:2]}"
    state = frame.evaluate(PAGE_STATE)
    if state["wrapper"]:
        return None  # the iframe page; its inner document is checked itself
    if state["picture"]:
        return picture_streams(frame)
    if state["error"] or (state["ended"] or "").startswith("Error"):
        return f"shows an error: {state['error'] or state['ended']}"
    if state["ended"]:
        return None
    # a live feed has no end: it must show what the lesson published
    seen = 0 if urlsplit(frame.url).path.startswith("/feed") else state["count"]
    try:
        # polled by the clock: a frame out of view draws no animation frames
        frame.wait_for_function(GROWN, arg=seen, polling=100, timeout=10_000)
    except PlaywrightTimeoutError:
        return f"stuck at {state['count']} messages, not ended"
    return None


def picture_streams(frame):
    """The picture page (MJPEG) streams, its frame changing, or shows Done's
    band; else why not."""
    picture = Picture(frame)
    try:
        # polled by the clock, as above: the frame may be out of view
        shown = picture.next_change(polling=100)
        if not shown["ended"]:
            picture.next_change(shown["hash"], polling=100)
    except PlaywrightTimeoutError:
        return "its picture shows no frame, or stopped changing before Done"
    return None


def timeline(frame):
    """The figures of the frame's timeline, from its inner frame for the
    iframe page; None if it has none."""
    for each in [frame, *frame.child_frames]:
        figures = each.evaluate(TIMELINE)
        if figures is not None:
            return figures
    return None


def wait_for_end(frame):
    """Wait, a bounded time, for the frame's page (or its inner page) to end:
    a timeline is compared once it is complete."""
    ended = f"() => Boolean(({PAGE_STATE})().ended)"
    for each in [frame, *frame.child_frames]:
        state = each.evaluate(PAGE_STATE)
        if state["wrapper"] or state["picture"]:
            continue  # the iframe page's inner page ends; a picture has no text
        # compared as it is if it does not end: a pitfall may never end
        with contextlib.suppress(PlaywrightTimeoutError):
            # polled by the clock: a frame out of view draws no frames
            each.wait_for_function(ended, polling=100, timeout=PAIR_ENDS_WITHIN * 1000)


def pair_problem(figure, problem, fix, first_is):
    """Why the problem page's timeline ``problem`` does not differ from the
    fix's ``fix`` in ``figure`` as the lesson says (``first_is``), if not."""
    a, b = problem.get(figure), fix.get(figure)
    said = f"{figure} {a} against {b}"
    if figure in ("repeated", "count"):
        a, b = a or 0, b or 0
        differs = a > b if first_is == "larger" else a < b
    elif figure == "arrivals":
        # jumps against one by one: at most half as many moments
        small, large = (b, a) if first_is == "larger" else (a, b)
        differs = large >= PAIR_FACTOR * max(small or 0, 1)
    elif figure == "gap" and b is None and first_is == "larger":
        differs = a is not None  # the fix never had to reconnect
    elif a is None or b is None:
        return f"{said}: no figure to compare"
    else:
        small, large = (b, a) if first_is == "larger" else (a, b)
        differs = large >= PAIR_FACTOR * small and large - small >= PAIR_MARGIN_MS
    return None if differs else f"{said}, not {first_is} as the lesson says"


def check_pairs(page, notebook):
    """Each pair a cell declares in its metadata: what its timelines read,
    and why they do not differ as the lesson says, for those that do not."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    problems, read = [], []
    for n, cell in enumerate(notebook.cells):
        declared = cell.get("metadata", {}).get("livestream", {}).get("differ", [])
        if not declared:
            continue
        frames = [
            handle.content_frame()
            for handle in cells.nth(n)
            .locator(".jp-OutputArea-output iframe")
            .element_handles()
        ]
        for pair in declared:
            one, other = pair.get("frames", [0, 1])
            figure = pair.get("in")
            first_is = pair.get("first_is", PAIR_DIRECTION.get(figure))
            where = f"cell {n}, frames {one} and {other}"
            if figure not in PAIR_DIRECTION or first_is not in ("larger", "smaller"):
                problems.append(
                    f"{where}: in must be one of {', '.join(PAIR_DIRECTION)}, "
                    f"first_is larger or smaller, not {pair}"
                )
                continue
            if max(one, other) >= len(frames):
                problems.append(f"{where}: the cell shows {len(frames)} frames")
                continue
            for frame in (frames[one], frames[other]):
                wait_for_end(frame)
            problem, fix = timeline(frames[one]), timeline(frames[other])
            read.append(
                f"{where}: {figure} {(problem or {}).get(figure)} against "
                f"{(fix or {}).get(figure)}"
            )
            if problem is None or fix is None:
                problems.append(f"{where}: no #timeline to read")
            elif why := pair_problem(figure, problem, fix, first_is):
                problems.append(f"{where}: {why}")
    return read, problems


def open_and_run_all(page, frontend, lesson):
    """Open ``lesson`` in the front end and Run All; how long that took."""
    code_cells = sum(
        cell.cell_type == "code" for cell in nbformat.read(NOTEBOOKS / lesson, 4).cells
    )
    started = time.monotonic()
    # "load" waits for every script; the notebook is there when its cells are
    page.goto(frontend.notebook_url(lesson), wait_until="commit")
    expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(
        code_cells, timeout=60_000
    )
    run_all(page, frontend, lesson)
    return time.monotonic() - started


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all(lesson_page, frontend, lesson):
    page = lesson_page
    ran = open_and_run_all(page, frontend, lesson)
    notebook = saved_notebook(page, frontend, lesson)
    pages = inline_pages(page, frames_shown(notebook))
    problems = [
        f"{src}: {why}" for src, frame in pages if (why := check_streams(frame))
    ]
    not_run = [
        n
        for n, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and cell.execution_count is None
    ]
    errors = tracebacks(notebook)
    read, pairs = check_pairs(page, notebook)
    print(
        f"\n{frontend.name} {lesson}: Run All took {ran:.1f} s; "
        f"{len(pages)} inline pages, {len(problems)} not streaming; "
        f"{len(read)} pairs, {len(pairs)} not as the lesson says",
        *errors,
        *problems,
        *read,
        *pairs,
        sep="\n  ",
    )
    assert errors == [], f"cells show errors or tracebacks in {frontend.name}"
    assert not_run == [], f"cells did not run in {frontend.name}"
    assert problems == [], f"inline pages that do not stream in {frontend.name}"
    assert pairs == [], f"pairs that do not differ as said in {frontend.name}"


def test_an_exercise_cell_run_again_replaces_its_server(lesson_page, frontend):
    page = lesson_page
    open_and_run_all(page, frontend, "01_xhr.ipynb")
    shown = frames_shown(saved_notebook(page, frontend, "01_xhr.ipynb"))
    pages = inline_pages(page, shown)
    exercise = page.locator(".jp-CodeCell").filter(has_text="def countdown")
    # the exercise may show its page beside another: its first is checked
    frame = exercise.locator("iframe").first
    old = urlsplit(frame.get_attribute("src"))
    # the servers of the lesson's other cells (the exercise's own pages may
    # share its server)
    others = [
        urlsplit(src) for src, _ in pages if urlsplit(src).port not in (None, old.port)
    ]
    # select the cell (its prompt, not its editor) and run it, as a learner does
    exercise.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")
    expect(frame).not_to_have_attribute("src", old.geturl())
    new = frame.element_handle().content_frame()
    assert check_streams(new) is None
    # the cell's last server is gone; the lesson's other servers are not
    assert not port_answers(old.port)
    assert all(port_answers(other.port) for other in others)


def port_answers(port):
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_the_checks_find_what_they_look_for():
    # the checks on the saved notebook and the timelines, on made-up ones:
    # without a browser, so each can be seen to fail
    cell = nbformat.v4.new_code_cell()
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="Traceback: shown"),
        nbformat.v4.new_output("stream", name="stderr", text="Traceback (m\nE: x"),
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    assert tracebacks(notebook) == ["cell 0 prints a traceback: E: x"]
    assert pair_problem("spread", {"spread": 10}, {"spread": 2000}, "smaller") is None
    jumps, one_by_one = {"arrivals": 3}, {"arrivals": 10}
    assert pair_problem("arrivals", jumps, one_by_one, "smaller") is None
    assert pair_problem("arrivals", {"arrivals": 7}, one_by_one, "smaller")
    assert pair_problem("spread", {"spread": 1500}, {"spread": 2000}, "smaller")
    assert pair_problem("first", {"first": 900}, {"first": 5}, "larger") is None
    assert pair_problem("first", {"first": 150}, {"first": 5}, "larger")  # jitter
    assert pair_problem("gap", {"gap": 800}, {}, "larger") is None
    assert pair_problem("repeated", {"repeated": 0}, {"repeated": 0}, "larger")
    assert pair_problem("count", {"count": 1}, {"count": 2}, "smaller") is None
