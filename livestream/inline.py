"""Pages shown inline in a notebook, side by side."""

import html


def display(*urls, height=360):
    """Show the page at each URL inline in a notebook, side by side.

    Each page is asked for its compact form (``embed=1``: no navigation, a
    small title, the readout first), and gets an equal share of the width.
    """
    return InlinePages(urls, height)


class InlinePages:
    """Pages shown inline, side by side in equal shares of the width."""

    def __init__(self, urls, height=360):
        self.urls = [with_query(url, "embed=1") for url in urls]
        self.height = height

    def _repr_html_(self):
        # min-width: 0 lets each frame shrink to its share instead of
        # pushing the others out of the cell
        frames = "".join(
            f'<iframe src="{html.escape(url)}" title="{html.escape(url)}" '
            f'style="flex: 1 1 0; min-width: 0; height: {int(self.height)}px; '
            'border: 1px solid #ccc"></iframe>'
            for url in self.urls
        )
        return f'<div style="display: flex; gap: 0.5rem; width: 100%">{frames}</div>'

    def __repr__(self):
        return "\n".join(self.urls)


def with_query(url, pair):
    """``url`` with ``pair`` added to its query string."""
    path, _, fragment = url.partition("#")
    path += ("&" if "?" in path else "?") + pair
    return f"{path}#{fragment}" if fragment else path
