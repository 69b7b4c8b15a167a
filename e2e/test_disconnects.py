"""However a reader leaves, the server's stream and its source end."""

import pytest

from testing_support import Recorder, wait_until

from .helpers import NAMES, SCRIPTED, Readout

INTERVAL = 0.1
WAYS_TO_LEAVE = [
    *[(technique, "close the page") for technique in NAMES],
    *[(technique, "go elsewhere") for technique in NAMES],
    *[(technique, "press Stop") for technique in SCRIPTED],
]


@pytest.mark.parametrize(("technique", "how"), WAYS_TO_LEAVE)
def test_leaving_ends_the_stream(live, page, technique, how):
    recorder = Recorder(forever=True, interval=INTERVAL)
    server = live(recorder)
    readout = Readout(page, technique)
    readout.open(server)
    readout.expect_started()
    assert server.active_streams == 1
    if how == "close the page":
        page.close()
    elif how == "go elsewhere":
        page.goto(server.url + "/status")
    else:
        readout.stop()
    # within one interval plus 1 s: the stream ends and the source is closed
    assert wait_until(lambda: server.active_streams == 0, INTERVAL + 1)
    assert recorder.closed.wait(INTERVAL + 1)
