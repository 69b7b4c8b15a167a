"""The MJPEG stream without a browser: a JPEG part per message as it is
yielded, each drawn from the messages so far, and a last part that says Done
or what went wrong."""

import io

import pytest
from PIL import Image

from livestream import create_app, mjpeg
from testing_support import HOSTILE, Stepper, pictures


def parts(app, query="count=100&interval=0"):
    body = app.test_client().get(f"/stream/mjpeg?{query}").get_data()
    return mjpeg.parts_of(body)


def messages_app(messages, **kwargs):
    return create_app(lambda count, interval: iter(messages), TESTING=True, **kwargs)


def test_a_part_per_message_then_done():
    values = [1, 4, 9, 16]
    got = parts(messages_app(values))
    assert len(got) == len(values) + 1
    for part in got:
        with Image.open(io.BytesIO(part)) as image:
            assert (image.format, image.size) == ("JPEG", (mjpeg.WIDTH, mjpeg.HEIGHT))
    # each the picture of the messages so far, byte for byte
    assert got == pictures(values)
    assert got[1] == mjpeg.jpeg(mjpeg.chart([1, 4]))


def test_the_end_is_the_last_picture_with_a_done_band():
    *_, last, end = parts(messages_app([0.5, 2.5]))
    drawn = Image.open(io.BytesIO(end)).convert("RGB")
    shown = Image.open(io.BytesIO(last)).convert("RGB")
    foot = mjpeg.HEIGHT - 3
    assert close(drawn.getpixel((mjpeg.WIDTH - 10, foot)), mjpeg.DONE_COLOUR)
    assert not close(shown.getpixel((mjpeg.WIDTH - 10, foot)), mjpeg.DONE_COLOUR)
    # above the band, the same picture
    assert close(drawn.getpixel((40, 30)), shown.getpixel((40, 30)), 60)


def close(pixel, colour, most=40):
    return all(abs(a - b) <= most for a, b in zip(pixel, colour, strict=True))


def test_no_message_is_a_blank_done():
    (end,) = parts(messages_app([]))
    assert close(Image.open(io.BytesIO(end)).getpixel((5, 5)), mjpeg.BACKGROUND)


def test_each_frame_is_written_as_its_message_is_yielded():
    # the next message is released only once the last one's frame has
    # arrived whole, with the next part's head after it
    stepper = Stepper([1.0, 2.0, 3.0])
    app = create_app(stepper, TESTING=True)
    response = app.test_client().get("/stream/mjpeg", buffered=False)
    chunks = iter(response.response)
    assert next(chunks) == mjpeg.OPENING
    frames = pictures([1.0, 2.0, 3.0])
    for k in range(3):
        stepper.release.release()
        assert next(chunks) == frames[k] + mjpeg.NEXT
    assert next(chunks) == frames[-1] + mjpeg.CLOSING
    response.close()
    assert stepper.closed.wait(5)


def test_markup_is_drawn_as_text():
    # nothing in a picture is parsed: the hostile messages are drawn, cut to
    # fit, and every part is a JPEG
    got = parts(messages_app(list(HOSTILE.values())))
    assert len(got) == len(HOSTILE) + 1
    for part in got:
        Image.open(io.BytesIO(part)).load()
    markup = HOSTILE["markup"]
    assert mjpeg.one_line(markup) == markup[:31] + "…"
    assert mjpeg.one_line("one\ntwo\ud800") == "one two\ufffd"


def test_a_message_json_cannot_encode_ends_in_an_error_frame():
    app = messages_app([1.0, float("nan")])
    *_, end = parts(app)
    foot = Image.open(io.BytesIO(end)).getpixel((5, mjpeg.HEIGHT - 3))
    assert close(foot, mjpeg.FAILED_COLOUR)


def test_a_lesson_draws_its_own_picture_or_jpeg_bytes():
    def squares(messages):
        image = Image.new("RGB", (64, 32), (len(messages) * 40, 0, 0))
        return image if len(messages) % 2 else mjpeg.jpeg(image)

    got = parts(messages_app(["a", "b", "c"], picture=squares))
    assert len(got) == 4
    reds = [Image.open(io.BytesIO(part)).getpixel((2, 2))[0] for part in got[:3]]
    assert [round(red / 40) for red in reds] == [1, 2, 3]
    assert Image.open(io.BytesIO(got[-1])).size == (64, 32)


@pytest.mark.parametrize(
    ("returned", "said"),
    [
        (None, "not NoneType"),
        (b"\x89PNG\r\n", "not JPEG"),
        (b"\xff\xd8" + b"--livestream-frame", "holds the multipart boundary"),
    ],
)
def test_a_picture_the_stream_cannot_send_is_refused(returned, said, caplog):
    got = parts(messages_app([1], picture=lambda messages: returned))
    assert len(got) == 1  # the end alone, which says why
    assert said in caplog.text


def test_a_picture_sees_at_most_the_newest_history():
    seen = []

    def count(messages):
        seen.append((len(messages), messages[-1]))
        return mjpeg.chart([])

    parts(messages_app(range(250), picture=count), "count=250&interval=0")
    assert seen[mjpeg.HISTORY - 1] == (mjpeg.HISTORY, mjpeg.HISTORY - 1)
    assert seen[-1] == (mjpeg.HISTORY, 249)
