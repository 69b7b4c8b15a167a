import html
import json
import re

import pytest
import requests

from livestream import create_app
from livestream.sources import sqrt_demo
from livestream.techniques import TECHNIQUES
from testing_support import stream_url_in

STREAMS = {
    "/stream/text": "text/plain",
    "/stream/ndjson": "application/x-ndjson",
    "/stream/html": "text/html",
    "/stream/sse": "text/event-stream",
    "/stream/htmx": "text/event-stream",
    "/stream/mjpeg": "multipart/x-mixed-replace",
}
PAGES = [
    "/",
    "/xhr",
    "/xhr?poll=1",
    "/iframe",
    "/fetch",
    "/sse",
    "/ws",
    "/htmx",
    "/mjpeg",
    "/xhr?embed=1",
]
HOSTILE = "<img src=x onerror=alert(1)>"


def messages_app(*messages):
    return create_app(lambda count, interval: iter(messages), TESTING=True)


def test_config():
    assert create_app().config["STREAM_COUNT"] == 500
    assert create_app().config["STREAM_INTERVAL"] == 1.0
    assert create_app(STREAM_COUNT=7).config["STREAM_COUNT"] == 7


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"source": 42}, TypeError, "callable"),
        ({"picture": "chart.png"}, TypeError, "picture must be a callable"),
        ({"stream_count": 5}, TypeError, "upper case"),
        ({"STREAM_COUNT": -1}, ValueError, "STREAM_COUNT"),
        ({"STREAM_INTERVAL": 61}, ValueError, "STREAM_INTERVAL"),
        ({"SSE_KEEPALIVE": 0}, ValueError, "SSE_KEEPALIVE"),
        ({"SSE_KEEPALIVE": "15"}, ValueError, "SSE_KEEPALIVE"),
        ({"SSE_RETRY_MS": 0.5}, ValueError, "SSE_RETRY_MS"),
    ],
)
def test_create_app_rejects(kwargs, error, words):
    with pytest.raises(error, match=words):
        create_app(**kwargs)


def test_sqrt_demo():
    assert list(sqrt_demo(4, 0)) == [0.0, 1.0, 2**0.5, 3**0.5]


@pytest.mark.parametrize("path", PAGES)
def test_page(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    ("path", "stream"),
    [
        ("/xhr", "/stream/ndjson"),
        ("/xhr?poll=1", "/stream/text"),
        ("/iframe", "/stream/html"),
        ("/fetch", "/stream/ndjson"),
        ("/sse", "/stream/sse"),
    ],
)
def test_page_passes_params_to_its_stream(client, path, stream):
    sep = "&" if "?" in path else "?"
    page = client.get(f"{path}{sep}count=3&interval=0.01").get_data(as_text=True)
    url = stream_url_in(page)
    assert url == f"{stream}?count=3&interval=0.01"
    response = client.get(url)
    assert response.status_code == 200
    assert response.get_data(as_text=True).count("1.4142135623730951") == 1


@pytest.mark.parametrize(("path", "mimetype"), STREAMS.items())
def test_stream_headers(client, path, mimetype):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.is_streamed


def test_ndjson_keeps_a_message_with_newlines_whole():
    messages = ["line one\nline two", "crlf\r\nend", {"a": [1, "b\nc"]}, 2.5]
    body = messages_app(*messages).test_client().get("/stream/ndjson").get_data()
    lines = body.decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == messages


def test_html_stream_escapes_each_message():
    body = messages_app(HOSTILE, {"k": "<b>"}).test_client().get("/stream/html")
    html = body.get_data(as_text=True)
    assert "<img" not in html
    assert "<b>" not in html
    items = re.findall(r'<li class="message">(.*?)</li>', html)
    assert items == [
        "&lt;img src=x onerror=alert(1)&gt;",
        "{&#34;k&#34;: &#34;&lt;b&gt;&#34;}",
    ]
    # the stylesheet comes before the first message, then the end marker
    assert html.index("stylesheet") < html.index('class="message"')
    assert html.index('class="message"') < html.index('id="done"')


@pytest.mark.parametrize("path", [*STREAMS, *PAGES])
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("count=abc", "count"),
        ("count=-1", "count"),
        ("count=1000001", "count"),
        ("count=1e3", "count"),
        ("count=", "count"),
        ("interval=fast", "interval"),
        ("interval=60.5", "interval"),
        ("interval=nan", "interval"),
        ("interval=inf", "interval"),
        ("interval=-0.1", "interval"),
    ],
)
def test_bad_params_get_400(client, path, query, name):
    sep = "&" if "?" in path else "?"
    response = client.get(f"{path}{sep}{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.count("\n") == 1
    assert text.startswith(f"{name} must be")
    assert "from 0 to" in text


def test_the_400_message_writes_its_bounds_out(client):
    # docs/pages-and-streams.md quotes it: 1000000, not 1e+06; 60, not 60.0
    assert client.get("/xhr?count=abc").get_data(as_text=True) == (
        "count must be an integer from 0 to 1000000, got 'abc'\n"
    )
    assert client.get("/xhr?interval=x").get_data(as_text=True) == (
        "interval must be a number of seconds from 0 to 60, got 'x'\n"
    )


@pytest.mark.parametrize("keep", ["0", "x", "1000001", "-3", "2.5"])
def test_bad_keep_gets_400(client, keep):
    response = client.get(f"/fetch?keep={keep}")
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("keep must be an integer")


def test_every_http_error_is_one_line_of_text(client):
    for response in (client.get("/nowhere"), client.post("/xhr")):
        assert response.status_code in (404, 405)
        assert response.mimetype == "text/plain"
        assert response.get_data(as_text=True).count("\n") == 1


def test_the_static_files_are_served_with_an_etag(client):
    for name in ("style.css", "readout.js"):
        with client.get(f"/static/{name}") as response:
            assert response.status_code == 200
            etag = response.headers["ETag"]
        with client.get(f"/static/{name}", headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304


@pytest.mark.parametrize("digits", [5000, 41])
def test_a_number_of_thousands_of_digits_gets_the_documented_400(client, digits):
    for name in ("count", "keep"):
        response = client.get(f"/fetch?{name}={'9' * digits}")
        assert response.status_code == 400
        assert response.get_data(as_text=True).startswith(
            f"{name} must be an integer from"
        )


@pytest.mark.parametrize("name", ["poll", "embed"])
def test_bad_flag_gets_400(client, name):
    response = client.get(f"/xhr?{name}=yes")
    assert response.status_code == 400
    assert f"{name} must be 0 or 1" in response.get_data(as_text=True)


def test_the_gallery_embeds_every_technique(client):
    page = client.get("/?count=4&interval=0.5").get_data(as_text=True)
    frames = re.findall(r'<iframe class="page"[^>]* src="([^"]*)"', page)
    # the path of each: some go to the other local name (see the next test)
    paths = [re.sub(r"^http://[^/]+", "", html.unescape(src)) for src in frames]
    assert paths == [
        "/xhr?poll=1&embed=1&count=4&interval=0.5",
        "/xhr?embed=1&count=4&interval=0.5",
        "/iframe?embed=1&count=4&interval=0.5",
        "/fetch?embed=1&count=4&interval=0.5",
        "/sse?embed=1&count=4&interval=0.5",
        "/ws?embed=1&count=4&interval=0.5",
        "/htmx?embed=1&count=4&interval=0.5",
        "/mjpeg?embed=1&count=4&interval=0.5",
    ]
    for src in frames:
        assert client.get(html.unescape(src)).status_code == 200


@pytest.mark.parametrize(
    ("query", "lines"), [("count=0", 0), ("count=2&interval=0", 2), ("interval=60", 3)]
)
def test_params_at_their_limits(client, query, lines):
    # interval=60 would wait a minute between messages: read only the first
    response = client.get(f"/stream/ndjson?{query}", buffered=False)
    assert response.status_code == 200
    if lines:
        assert next(response.response).startswith(b"0.0\n")
    else:
        assert response.get_data() == b""
    response.close()


def test_huge_count_is_streamed_not_built(client):
    response = client.get("/stream/ndjson?count=1000000&interval=0")
    assert response.status_code == 200
    # messages that are ready together come in one chunk: read a few chunks
    received = b""
    for chunk in response.response:
        received += chunk
        if received.count(b"\n") >= 3:
            break
    assert received.split(b"\n")[:3] == [b"0.0", b"1.0", b"1.4142135623730951"]
    response.close()


def test_stylesheet(client):
    with client.get("/static/style.css") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"


def test_html_stream_keeps_carriage_returns():
    # a raw \r would reach the page as \n: HTML parsers normalise line breaks
    html = messages_app("a\r\nb\rc").test_client().get("/stream/html")
    assert '<li class="message">a&#13;\nb&#13;c</li>' in html.get_data(as_text=True)


def test_null_is_a_message_like_any_other(live):
    # JSON's null must not be mistaken for "nothing came"
    server = live(lambda count, interval: iter([None, 0, None]))
    assert requests.get(server.url + "/stream/ndjson", timeout=5).text == (
        "null\n0\nnull\n"
    )


def test_the_gallery_spreads_its_frames_over_both_local_names(client):
    # a browser opens six connections to a host at once: the gallery's
    # streams, more than six, go to two names so that none waits
    html = client.get("/", headers={"Host": "127.0.0.1:5000"}).get_data(as_text=True)
    sources = re.findall(r'<iframe class="page"[^>]*src="([^"]*)"', html, re.S)
    assert len(sources) == len(TECHNIQUES)
    elsewhere = [s for s in sources if s.startswith("http://localhost:5000/")]
    assert 0 < len(elsewhere) < len(sources)
    # behind a proxy's path there is only the one name
    html = client.get("/", base_url="http://127.0.0.1:5000/proxy/5000").get_data(
        as_text=True
    )
    assert "http://localhost" not in html
