"""Every lesson runs top to bottom in a headless kernel."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from testing_support import tracebacks

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# what each lesson starts besides its own servers
NEEDS = {
    "01_xhr.ipynb": [pytest.mark.browser],
    "02_iframe.ipynb": [pytest.mark.browser],
    "03_fetch.ipynb": [pytest.mark.browser],
    "04_sse.ipynb": [pytest.mark.browser, pytest.mark.proxy],
    "05_compare.ipynb": [pytest.mark.browser],
    "06_pitfalls.ipynb": [pytest.mark.browser, pytest.mark.nginx],
    "07_scale_out.ipynb": [pytest.mark.redis],
    "08_sse_or_websocket.ipynb": [pytest.mark.browser],
    "09_streamed_answer.ipynb": [pytest.mark.browser],
    "10_no_javascript.ipynb": [pytest.mark.browser],
}


def test_the_lessons_are_there():
    assert [path.name for path in NOTEBOOKS] == list(NEEDS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path):
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None


def execute(path):
    """Run the notebook at ``path`` in a fresh kernel; the notebook run."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        # run every cell, then report every error with the cell it came from
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # an event loop of its own, closed at the end: execute() would leave one
    # open in each worker thread
    asyncio.run(client.async_execute())
    return notebook


# lessons run at once: each spends most of its time waiting for streams and
# browsers, so a few side by side take little longer than one
AT_ONCE = 3


@pytest.fixture(scope="module")
def runs(request):
    """The selected lessons, started AT_ONCE at a time: path -> its future."""
    paths = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_runs"
    ]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        yield {path: pool.submit(execute, path) for path in paths}


@pytest.mark.parametrize(
    "path",
    [pytest.param(path, marks=NEEDS.get(path.name, [])) for path in NOTEBOOKS],
    ids=lambda path: path.name,
)
def test_notebook_runs(path, runs):
    notebook = runs[path].result()
    assert notebook.cells[0].source.startswith(f"# {path.name[:2]} ·")
    # nothing a server thread logged lands in a cell (issue 20): a lesson
    # shows an error on purpose by printing it
    assert tracebacks(notebook) == []
