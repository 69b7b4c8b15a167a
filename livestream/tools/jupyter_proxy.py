"""The Jupyter Server whose jupyter-server-proxy a lesson goes through, as on
JupyterHub and Binder: the one this kernel runs under, when it has the proxy,
else one started here (:func:`livestream.tools.services.start_jupyter_server`).
"""

import os
import urllib.error
import urllib.parse
import urllib.request

from .services import JupyterServer, start_jupyter_server


def jupyter_proxy():
    """A :class:`JupyterServer` with jupyter-server-proxy; ``stop()`` stops it
    only if it was started here."""
    return own_server() or start_jupyter_server()


def own_server():
    """The Jupyter Server this kernel runs under, if it serves the proxy; else None."""
    parent = os.environ.get("JPY_PARENT_PID")
    if not parent:
        return None
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    for info in list_running_servers():
        if str(info.get("pid")) != parent:
            continue
        # on a hub the server takes the hub's API token; the browser is on the
        # hub's host, so its addresses are paths there
        token = info.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        url = info["url"].rstrip("/")
        public = urllib.parse.urlsplit(url).path
        server = JupyterServer(None, url, token, public_url=public)
        return server if serves_the_proxy(server) else None
    return None


def serves_the_proxy(server):
    """Whether ``server`` has jupyter-server-proxy's routes (it answers a port
    nobody listens on with an error of its own, not 404)."""
    request = urllib.request.Request(server.proxied(1) + "/", headers=server.headers)
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as error:
        return error.code != 404
    except OSError:
        return False
