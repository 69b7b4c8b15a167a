"""A picture per message: the JPEG frames of ``/stream/mjpeg``, and how they go
on the wire as ``multipart/x-mixed-replace``.

Each message is drawn into a picture of the messages so far (the newest
HISTORY of them), which the browser shows in an ``<img>`` in place of the
last; the end is the last picture with a band that says Done, or what went
wrong. A message is drawn, never parsed: markup in it is pixels, with
nothing for a browser to run.

Chromium shows a part of ``multipart/x-mixed-replace`` only once the next
part's headers have arrived, not when the part itself has: the layout that
tutorials copy (boundary and headers, then the JPEG) keeps every frame one
message late, and the first hidden until the second. So each frame here goes
out followed at once by the boundary and the headers of the part after it,
and the last by the closing boundary.
"""

import functools
import io
import math
import re
from collections import deque

from PIL import Image, ImageDraw, ImageFont

from .framing import Unsendable, as_text

FORMAT = "JPEG frames"
WIDTH, HEIGHT = 480, 270
# the newest messages a picture is drawn from: the chart scrolls once it
# holds this many, and a stream keeps no more than these
HISTORY = 100
# JPEG quality, and no chroma subsampling: a chart's thin coloured lines and
# its text blur at 4:2:0
QUALITY = 80
SUBSAMPLING = 0
# the most characters of a message a picture shows
SHOWN_CHARACTERS = 32

BOUNDARY = "livestream-frame"
MIMETYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
_DELIMITER = f"\r\n--{BOUNDARY}".encode()
_HEAD = b"\r\nContent-Type: image/jpeg\r\n\r\n"
# the first part's head; then, after each frame, the next part's
OPENING = f"--{BOUNDARY}".encode() + _HEAD
NEXT = _DELIMITER + _HEAD
CLOSING = _DELIMITER + b"--\r\n"

BACKGROUND = (250, 250, 250)
INK = (34, 34, 34)
FAINT = (150, 150, 150)
LINE = (31, 119, 180)
# the end's band: green for Done, red for an error; tests look for them
DONE_COLOUR = (24, 128, 56)
FAILED_COLOUR = (176, 0, 32)

# what a picture cannot draw on one line: line breaks and other control
# characters (shown as spaces), and lone surrogates (shown as U+FFFD)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@functools.cache
def font(size):
    """Pillow's own font at ``size`` pixels: the same on every machine."""
    return ImageFont.load_default(size=size)


def one_line(text, most=SHOWN_CHARACTERS):
    """``text`` as a picture shows it: on one line, at most ``most`` characters."""
    cut = len(text) > most
    # cut first: a message of a megabyte costs no more to draw than a word
    text = text[: most - 1] + "…" if cut else text
    return _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", text))


def is_number(message):
    """Whether ``message`` is a value the chart can plot."""
    return (
        isinstance(message, int | float)
        and not isinstance(message, bool)
        and math.isfinite(message)
    )


def chart(messages):
    """The default picture: the latest message, and a line chart of the numbers
    among ``messages`` (the newest last)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if messages:
        text = one_line(as_text(messages[-1], FORMAT))
        draw.text((16, 12), text, font=font(30), fill=INK)
    box = (16, 60, WIDTH - 72, HEIGHT - 16)
    draw.rectangle(box, outline=FAINT)
    values = [float(m) for m in messages if is_number(m)]
    if not values:
        draw.text(
            (box[0] + 8, box[1] + 6), "no numbers to chart", font=font(13), fill=FAINT
        )
        return image
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    left, top, right, bottom = box[0] + 4, box[1] + 6, box[2] - 4, box[3] - 6
    step = (right - left) / (HISTORY - 1)
    points = [
        (left + k * step, bottom - (value - low) / span * (bottom - top))
        for k, value in enumerate(values)
    ]
    if len(points) > 1:
        draw.line(points, fill=LINE, width=2, joint="curve")
    x, y = points[-1]
    draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=LINE)
    for value, y in ((high, top), (low, bottom)):
        draw.text(
            (box[2] + 6, y), f"{value:.4g}", font=font(12), fill=FAINT, anchor="lm"
        )
    return image


def ending(picture, text, colour):
    """A copy of ``picture`` (an Image, JPEG bytes, or None for a blank one)
    with a band across its foot that says ``text``."""
    if picture is None:
        image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    elif isinstance(picture, Image.Image):
        image = picture.convert("RGB")
    else:
        image = Image.open(io.BytesIO(picture)).convert("RGB")
    width, height = image.size
    band = max(20, height // 7)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height - band, width, height), fill=colour)
    # a short word large; a long account smaller, so that more of it fits
    size = max(10, min(int(band * 0.6), int(width / (0.55 * min(len(text), 70)))))
    most = max(4, int(width / (size * 0.55)))
    draw.text(
        (band // 2, height - band // 2),
        one_line(text, most),
        font=font(size),
        fill=(255, 255, 255),
        anchor="lm",
    )
    return image


def jpeg(picture):
    """``picture`` (a PIL Image, or JPEG bytes) as JPEG bytes, ready to be a
    part: bytes are checked, not decoded again."""
    if isinstance(picture, Image.Image):
        out = io.BytesIO()
        picture.convert("RGB").save(
            out, "JPEG", quality=QUALITY, subsampling=SUBSAMPLING
        )
        data = out.getvalue()
    elif isinstance(picture, bytes | bytearray | memoryview):
        data = bytes(picture)
        if not data.startswith(b"\xff\xd8"):
            raise TypeError(
                "a picture function must return a PIL Image or JPEG bytes; these "
                f"bytes are not JPEG (they start {data[:8]!r})"
            )
    else:
        raise TypeError(
            "a picture function must return a PIL Image or JPEG bytes, not "
            f"{type(picture).__name__}"
        )
    # the part would end where the boundary appears: refused, not cut in two
    if _DELIMITER[2:] in data:
        raise Unsendable(FORMAT, "a frame that holds the multipart boundary", data)
    return data


def frame(draw, messages):
    """``(picture, its JPEG)`` for ``draw(messages)``; a failure of ``draw`` is
    the message's refusal, so the stream says so in its last frame."""
    try:
        picture = draw(messages)
        return picture, jpeg(picture)
    except Unsendable:
        raise
    except Exception as error:
        problem = f"a message its picture failed on ({type(error).__name__}: {error})"
        raise Unsendable(FORMAT, problem[:200], messages[-1]) from error


def frames(batches, draw, outcome):
    """The body of a picture stream: a part per message, drawn by ``draw``
    from the messages so far, each written as soon as it is drawn, then a last
    part that says Done, or what went wrong (``outcome``, see
    :class:`livestream.streams.Outcome`)."""
    history = deque(maxlen=HISTORY)
    last = None

    def parts():
        nonlocal last
        for batch in batches:
            for message in batch:
                history.append(message)
                last, data = frame(draw, list(history))
                # one write a frame: a batch of a thousand messages is never
                # a thousand JPEGs in memory at once
                yield data + NEXT

    yield OPENING
    yield from outcome.watch(parts())
    if outcome.error:
        end = ending(last, f"Error: {outcome.error}", FAILED_COLOUR)
    else:
        end = ending(last, "Done", DONE_COLOUR)
    yield jpeg(end) + CLOSING


def parts_of(body):
    """The JPEG of each part of a whole picture stream's ``body``; ValueError if
    it is not one (no frame holds the boundary, so a split finds every part)."""
    if not (body.startswith(OPENING) and body.endswith(CLOSING)):
        raise ValueError(
            f"not a whole picture stream: {body[:60]!r} ... {body[-60:]!r}"
        )
    return body[len(OPENING) : -len(CLOSING)].split(NEXT)
