"""One guard for every request the app answers, whatever its route.

A page on another site can make a browser send requests here, and the
browser attaches nothing that tells this server it is a stranger's page
except ``Origin``. What reading a response cross-site needs (CORS) is
refused by the browser already; what is not refused is what this guard is
for:

- a Host that is not one of this app's names (DNS rebinding): Flask's
  TRUSTED_HOSTS refuses it; the guard only makes the refusal name the setting;
- a WebSocket upgrade, which the browser opens cross-site and lets the page
  read, and a POST (or any method that changes state), which the browser
  sends cross-site without asking: both need an ``Origin`` that is this
  app's own or one in ALLOWED_ORIGINS;
- a POST whose body is not JSON: a form or a ``no-cors`` fetch can send
  ``text/plain`` without asking first, but ``application/json`` makes the
  browser ask (a preflight this app never approves);
- framing: ``frame-ancestors`` lets only this origin and ALLOWED_ORIGINS
  (JupyterLab, Notebook 7, the proxy) show a page in a frame.

Each refusal is one line of plain text (see ``app.plain_error``).
"""

from urllib.parse import urlsplit

from flask import abort, current_app, request
from werkzeug.exceptions import SecurityError

from .params import shown

# the methods a browser sends cross-site without asking and that change
# nothing: every other method is checked
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def init_app(app):
    """Put every request of ``app`` through the guard."""
    app.before_request(check_request)
    app.after_request(protect_response)
    app.register_error_handler(SecurityError, untrusted_host)


def check_request():
    """Refuse a cross-site WebSocket or state change, and a body not JSON."""
    if request.routing_exception is not None:
        return  # no view runs: the 404, 405 or Host refusal says why
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if not upgrade and request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    # a client that is no browser sends no Origin, and no page drives it
    if origin is not None and not allowed_origin(origin):
        what = "open a WebSocket" if upgrade else f"send a {request.method}"
        abort(
            403,
            f"a page from origin {shown(origin)} may not {what} here: add the "
            "origin to ALLOWED_ORIGINS (LIVESTREAM_ALLOWED_ORIGINS) to allow it",
        )
    if not upgrade and request.mimetype != "application/json":
        abort(
            415,
            f"a {request.method} must send Content-Type: application/json, "
            f"got {shown(request.headers.get('Content-Type', 'none'))}",
        )


def protect_response(response):
    """Say who may frame the page, and that nothing here is to be sniffed."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    ancestors = frame_ancestors()
    if ancestors is not None:
        response.headers.setdefault(
            "Content-Security-Policy", f"frame-ancestors {ancestors}"
        )
    return response


def untrusted_host(error):
    """Flask's own refusal of a Host, saying which setting would allow it."""
    return (
        f"{error.description.rstrip('.')}: add it to TRUSTED_HOSTS "
        "(LIVESTREAM_TRUSTED_HOSTS) to allow it\n",
        400,
        {"Content-Type": "text/plain; charset=utf-8"},
    )


def allowed_origin(origin):
    """Whether a page from ``origin`` may talk to this app: its own origin, or
    one that ALLOWED_ORIGINS lists (None allows every origin)."""
    allowed = current_app.config["ALLOWED_ORIGINS"]
    if allowed is None:
        return True
    found = parse_origin(origin)
    if found is None:  # "null": a sandboxed frame, a file, a redirect
        return False
    if found == parse_origin(request.host_url.rstrip("/")):
        return True
    return any(matches(found, pattern) for pattern in allowed)


def frame_ancestors():
    """The CSP source list of the pages that may frame this one."""
    allowed = current_app.config["ALLOWED_ORIGINS"]
    if allowed is None:
        return None
    return " ".join(["'self'", *allowed])


def parse_origin(text):
    """``(scheme, host, port)`` of an origin, or None if it is not one."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def matches(origin, pattern):
    """Whether ``origin`` fits ``pattern``: an origin whose port may be ``*``."""
    any_port = pattern.endswith(":*")
    wanted = parse_origin(pattern[:-2] if any_port else pattern)
    if wanted is None:
        return False
    if any_port:
        return origin[:2] == wanted[:2]
    return origin == wanted
