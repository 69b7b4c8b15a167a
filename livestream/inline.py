"""Pages shown inline in a notebook, side by side."""

import html


def display(*urls, height=360, captions=None):
    """Show the page at each URL inline in a notebook, side by side.

    Each page is asked for its compact form (``embed=1``: no navigation, a
    small title, the readout first), and gets an equal share of the width.
    ``captions``, one string per page (or None for a page without one), are
    shown above the frames, in the notebook: say which page of a pair is
    which, and that a page is broken on purpose.
    """
    return InlinePages(urls, height, captions)


class InlinePages:
    """Pages shown inline, side by side in equal shares of the width."""

    def __init__(self, urls, height=360, captions=None):
        self.urls = [with_query(url, "embed=1") for url in urls]
        self.height = height
        self.captions = checked_captions(captions, len(self.urls))

    def _repr_html_(self):
        # min-width: 0 lets each page shrink to its share instead of pushing
        # the others out of the cell; the captions grow to the tallest one,
        # so that the frames below them stay level
        pages = "".join(
            '<figure style="flex: 1 1 0; min-width: 0; margin: 0; '
            'display: flex; flex-direction: column">'
            + (
                '<figcaption style="flex: 1 0 auto; margin: 0 0 0.25rem">'
                f"{html.escape(caption)}</figcaption>"
                if caption
                else ""
            )
            + f'<iframe src="{html.escape(url)}" '
            f'title="{html.escape(caption or url)}" '
            f'style="width: 100%; box-sizing: border-box; '
            f'height: {int(self.height)}px; border: 1px solid #ccc"></iframe>'
            "</figure>"
            for url, caption in zip(self.urls, self.captions, strict=True)
        )
        return f'<div style="display: flex; gap: 0.5rem; width: 100%">{pages}</div>'

    def __repr__(self):
        return "\n".join(
            f"{caption}: {url}" if caption else url
            for url, caption in zip(self.urls, self.captions, strict=True)
        )


def checked_captions(captions, pages):
    """``captions`` as a list with one caption (or None) per page."""
    if captions is None:
        return [None] * pages
    example = ", ".join(f'"page {k + 1}"' for k in range(pages))
    if isinstance(captions, str):
        raise ValueError(
            f"captions takes a list of one caption per page: captions=[{example}]"
        )
    captions = list(captions)
    if len(captions) != pages:
        raise ValueError(
            f"captions has {len(captions)} caption(s) for {pages} page(s): pass "
            f"one per page, in order, captions=[{example}] (None for no caption)"
        )
    for caption in captions:
        if caption is not None and not isinstance(caption, str):
            raise TypeError(
                f"each caption is a str (or None), not {type(caption).__name__}"
            )
    return captions


def with_query(url, pair):
    """``url`` with ``pair`` added to its query string."""
    path, _, fragment = url.partition("#")
    path += ("&" if "?" in path else "?") + pair
    return f"{path}#{fragment}" if fragment else path
