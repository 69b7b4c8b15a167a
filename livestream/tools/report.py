"""How the tools report what they measured: percentiles, tables, progress."""

import math
import sys


def percentile(ordered, p):
    """The ``p``-th percentile of sorted ``ordered``, by the nearest rank."""
    if not ordered:
        raise ValueError("no values to take a percentile of")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def milliseconds(places=0):
    """A column format for :func:`markdown_table`: seconds shown in
    milliseconds, to ``places`` decimals."""
    return lambda seconds: f"{seconds * 1000:.{places}f}"


def markdown_table(rows, columns=None):
    """``rows`` (dicts) as a Markdown table.

    ``columns`` is a list of ``(key, title, format)``; a format is a format
    string or a function of the value. By default every key of the rows, as
    it is. A missing value shows as ``-``; the first column is left-aligned,
    the others right-aligned, as figures are.
    """
    if columns is None:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        columns = [(key, key, "{}") for key in keys]
    lines = [
        "| " + " | ".join(title for _, title, _ in columns) + " |",
        "|---" + "|--:" * (len(columns) - 1) + "|",
    ]
    for row in rows:
        cells = []
        for key, _, style in columns:
            value = row.get(key)
            if value is None:
                cells.append("-")
            elif callable(style):
                cells.append(style(value))
            else:
                cells.append(style.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def progress_bar(done, total, label, stream=sys.stderr):
    """Draw how far a run has got, on one line where the stream is a terminal."""
    width = 30
    filled = round(width * done / total)
    end = "\n" if done == total or not stream.isatty() else "\r"
    stream.write(
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:28}{end}"
    )
    stream.flush()
