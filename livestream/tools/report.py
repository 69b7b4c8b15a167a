"""How the tools report what they measured: percentiles and tables.

What a library does is left to it: a lesson's table is a pandas DataFrame,
and a long run's progress is a ``tqdm.auto`` bar. What stays here is what no
installed library does: a percentile by the nearest rank, and a Markdown
table for the command-line tools (pandas writes Markdown only through
tabulate, which nothing here needs otherwise).
"""

import math


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


def _columns_of(rows):
    """Every key of ``rows``, as it is: the default columns of a table."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return [(key, key, "{}") for key in keys]


def _shown(value, style):
    """``value`` as a table shows it, in ``style`` (a format string or a
    function of the value)."""
    return style(value) if callable(style) else style.format(value)


def markdown_table(rows, columns=None):
    """``rows`` (dicts) as a Markdown table.

    ``columns`` is a list of ``(key, title, format)``; a format is a format
    string or a function of the value. By default every key of the rows, as
    it is. A missing value shows as ``-``; the first column is left-aligned,
    the others right-aligned, as figures are.
    """
    if columns is None:
        columns = _columns_of(rows)
    lines = [
        "| " + " | ".join(title for _, title, _ in columns) + " |",
        "|---" + "|--:" * (len(columns) - 1) + "|",
    ]
    for row in rows:
        cells = []
        for key, _, style in columns:
            value = row.get(key)
            cells.append("-" if value is None else _shown(value, style))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dataframe(rows, columns=None):
    """``rows`` (dicts) as a pandas DataFrame, indexed by the first column.

    ``columns`` is what :func:`markdown_table` takes, and each figure is the
    number the Markdown table would show (times in the unit its title says,
    rounded as it shows them), so a notebook renders it as an HTML table the
    learner can still sort or plot. A missing value is ``<NA>``; text stays
    as it is.
    """
    # pandas comes with the tutorial; the command-line tools run without it
    import pandas as pd

    if columns is None:
        columns = _columns_of(rows)
    data = {}
    for key, title, style in columns:
        data[title] = [_figure(row.get(key), style) for row in rows]
    table = pd.DataFrame(data).convert_dtypes()
    return table.set_index(columns[0][1])


def _figure(value, style):
    """A number as :func:`markdown_table` shows it, as a number again."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    shown = _shown(value, style).replace(",", "")
    number = float(shown)
    return int(number) if number.is_integer() and "." not in shown else number
