"""What each notebook cell started, so that a cell run again replaces it.

JupyterLab and Notebook 7 send a cell's id with each request to run it. A
server or service started from a cell is recorded under that id; when the
same cell runs again, what its last run started is stopped first. Everything
else runs until it is stopped or the kernel ends. A kernel that gets no cell
id (nbclient, a console) records nothing.
"""

import sys
import threading

# cell id -> (the id of its last run, what that run started)
_runs = {}
_lock = threading.Lock()


def current():
    """``(cell id, run id)`` of the notebook cell running now, else ``(None, None)``."""
    ipython = sys.modules.get("IPython")  # never imported: not in a kernel
    kernel = getattr(ipython and ipython.get_ipython(), "kernel", None)
    parent = kernel.get_parent() if hasattr(kernel, "get_parent") else {}
    cell = parent.get("metadata", {}).get("cellId")
    return (cell, parent["header"].get("msg_id")) if cell else (None, None)


def stop_last_run():
    """Stop what the previous run of the cell running now started."""
    cell, run = current()
    with _lock:
        last = _runs.get(cell)
        if last is None or last[0] == run:
            return
        del _runs[cell]
    for thing in last[1]:
        thing.stop()


def started(thing):
    """Record ``thing`` (it has ``stop()``) as started by the cell running now."""
    stop_last_run()
    cell, run = current()
    if cell is not None:
        with _lock:
            _runs.setdefault(cell, (run, []))[1].append(thing)
