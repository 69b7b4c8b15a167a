"""Every lesson runs top to bottom in a headless kernel."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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


@pytest.mark.parametrize(
    "path",
    [pytest.param(path, marks=NEEDS.get(path.name, [])) for path in NOTEBOOKS],
    ids=lambda path: path.name,
)
def test_notebook_runs(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].source.startswith(f"# {path.name[:2]} ·")
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        # run every cell, then report every error with the cell it came from
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    errors = [
        f"cell {number}: {output['ename']}: {output['evalue']}"
        for number, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
