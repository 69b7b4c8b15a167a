"""A small reverse proxy that buffers, the way jupyter-server-proxy does.

JupyterHub and Binder reach a server in the kernel through
jupyter-server-proxy: ``/user/<name>/proxy/<port>/...`` is passed on to
``127.0.0.1:<port>/...``. It collects every response whole before passing
it on, except ``text/event-stream``. This proxy does the same, so a lesson
can show which techniques survive such a proxy, on one machine.
"""

import http.client
from urllib.parse import urlsplit

# hop-by-hop headers describe one connection, not the response: never forwarded
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "content-length",
}
FORWARDED_REQUEST_HEADERS = ("Accept", "Cache-Control", "Last-Event-ID")


def buffering_proxy(
    target, prefix="", stream_types=("text/event-stream",), honour_accel=False
):
    """A WSGI app passing ``prefix/<path>`` on to ``target/<path>``.

    Response bodies are read whole before they are sent on, except those
    whose content type is in ``stream_types``: those stream through. With
    ``honour_accel``, so does a response with ``X-Accel-Buffering: no``, as
    nginx does; jupyter-server-proxy ignores that header.
    """
    parts = urlsplit(target)
    prefix = prefix.rstrip("/")

    def proxy(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(prefix + "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"this proxy serves paths under {prefix}/\n".encode()]
        query = environ.get("QUERY_STRING")
        upstream_path = path[len(prefix) :] + (f"?{query}" if query else "")
        headers = {
            name: environ[key]
            for name in FORWARDED_REQUEST_HEADERS
            if (key := "HTTP_" + name.upper().replace("-", "_")) in environ
        }
        connection = http.client.HTTPConnection(parts.hostname, parts.port)
        connection.request(environ["REQUEST_METHOD"], upstream_path, headers=headers)
        response = connection.getresponse()
        status = f"{response.status} {response.reason}"
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        mimetype = (response.getheader("Content-Type") or "").split(";")[0].strip()
        unbuffered = (response.getheader("X-Accel-Buffering") or "").lower() == "no"
        if mimetype in stream_types or (honour_accel and unbuffered):
            start_response(status, kept)
            return _pass_through(response, connection)
        body = response.read()  # the whole body, however long the stream takes
        connection.close()
        start_response(status, [*kept, ("Content-Length", str(len(body)))])
        return [body]

    return proxy


def _pass_through(response, connection):
    try:
        while chunk := response.read1(65536):
            yield chunk
    finally:
        connection.close()
