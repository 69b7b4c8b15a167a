"""nginx with the Nchan pub/sub module: the C program ``livestream-fanout``
measures livestream against.

Nchan (Debian: ``apt-get install libnginx-mod-nchan``) serves EventSource
subscribers from nginx's worker processes and takes each message by an HTTP
POST; the workers pass a message to each other through shared memory. The
config here is its documented minimum: one subscriber location, one
publisher location, one channel.
"""

import http.client
import os

from .services import NGINX_MISSING, answering, free_port, nginx_path, run_nginx

# where Debian's libnginx-mod-nchan puts the module
MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_nchan_module.so",)
SUBSCRIBE = "/sub"
PUBLISH = "/pub"

NCHAN_CONFIG = """\
load_module {module};
daemon off;
worker_processes {workers};
# a worker may take every client: nginx does not spread connections evenly
worker_rlimit_nofile {nofile};
pid {scratch}/nginx.pid;
error_log stderr warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {scratch}/client_body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog={backlog};
        location = /status {{ return 200 "ok\\n"; }}
        location = {subscribe} {{
            nchan_subscriber eventsource;
            nchan_channel_id feed;
        }}
        location = {publish} {{
            nchan_publisher http;
            nchan_channel_id feed;
            # a subscriber starts at the newest message: a short buffer will do
            nchan_message_buffer_length 16;
            # one publishing connection for the whole run, as the others keep
            # theirs to Redis (nginx closes a connection after 1,000 by default)
            keepalive_requests 1000000;
        }}
    }}
}}
"""


def module_path():
    """Nchan's module on this machine, or None."""
    return next((path for path in MODULE_PATHS if os.path.exists(path)), None)


def missing():
    """Why Nchan cannot run here, in one line; None when it can."""
    if nginx_path() is None:
        return NGINX_MISSING
    if module_path() is None:
        return (
            "nginx's Nchan module is not installed: on Debian, "
            "apt-get install libnginx-mod-nchan"
        )
    return None


def start_nchan(workers=4, connections=1024, port=None, backlog=4096, timeout=10.0):
    """nginx + Nchan on 127.0.0.1 with ``workers`` worker processes, each
    taking up to ``connections`` connections.

    Subscribers ``GET`` :data:`SUBSCRIBE` (EventSource); messages are
    ``POST``\\ ed to :data:`PUBLISH` (:class:`Publisher`).
    """
    reason = missing()
    if reason:
        raise FileNotFoundError(reason)
    port = port or free_port()
    return run_nginx(
        "nginx+nchan",
        lambda scratch: NCHAN_CONFIG.format(
            module=module_path(),
            workers=workers,
            connections=connections,
            # a connection is one descriptor; and a few for logs and pipes
            nofile=connections + 64,
            scratch=scratch,
            port=port,
            backlog=backlog,
            subscribe=SUBSCRIBE,
            publish=PUBLISH,
        ),
        port,
        timeout,
        ready=answering(port, b"GET /status HTTP/1.0\r\n\r\n", b"HTTP/1.1 200"),
    )


class Publisher:
    """POSTs messages to Nchan's publisher location on one kept-alive connection."""

    def __init__(self, url):
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def __call__(self, body):
        """Publish ``body`` (bytes or str); raises if Nchan does not take it."""
        self.connection.request(
            "POST", PUBLISH, body=body, headers={"Content-Type": "text/plain"}
        )
        response = self.connection.getresponse()
        response.read()  # the channel's figures; read, so the connection is reused
        # 201: a subscriber got it; 202: queued, none listening
        if response.status not in (201, 202):
            raise RuntimeError(f"Nchan answered {response.status} {response.reason}")

    def close(self):
        self.connection.close()
