"""Whatever the query string, every page and stream answers 200 or 400:
never a 500, never a traceback."""

from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from livestream import create_app

PATHS = [
    "/",
    "/xhr",
    "/iframe",
    "/fetch",
    "/sse",
    "/ws",
    "/htmx",
    "/htmx/stop",
    "/status",
    "/stream/text",
    "/stream/ndjson",
    "/stream/html",
    "/stream/sse",
    "/stream/ws",
    "/stream/htmx",
]
KNOWN = ["count", "interval", "keep", "poll", "embed", "after", "resume"]
NAMES = st.sampled_from(KNOWN) | st.text(max_size=8)
VALUES = (
    st.text(max_size=20)
    | st.integers(-10, 2_000_000).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(str)
)


def quick(count, interval, start=0):
    # a quick source, so that every accepted stream can be read to its end
    yield from range(start, min(count, 3))


APP = create_app(quick, TESTING=True)


def check(response):
    body = response.get_data(as_text=True)
    assert response.status_code in (200, 400), (response.status_code, body[:300])
    assert "Traceback" not in body
    if response.status_code == 400:
        assert body.count("\n") == 1


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), params=st.dictionaries(NAMES, VALUES, max_size=4))
def test_any_query(path, params):
    check(APP.test_client().get(f"{path}?{urlencode(params)}"))


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PATHS), raw=st.text(max_size=40))
def test_any_raw_query_string(path, raw):
    check(APP.test_client().get(f"{path}?{quote(raw, safe='=&%+')}"))


@settings(max_examples=200, deadline=None)
@given(last_id=st.text(max_size=20), count=st.integers(0, 5))
def test_any_last_event_id(last_id, count):
    # header values travel as Latin-1: keep to what a client can send
    header = last_id.encode("latin-1", "replace").decode("latin-1")
    header = header.replace("\r", "").replace("\n", "")
    response = APP.test_client().get(
        f"/stream/sse?count={count}", headers={"Last-Event-ID": header}
    )
    check(response)
