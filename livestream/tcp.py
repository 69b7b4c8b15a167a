"""TCP options for a stream's socket, so that a client whose network vanished
is let go.

A client can vanish without a word: Wi-Fi off, a laptop lid closed, a NAT
entry that expired. No FIN, no RST arrives, so the socket never becomes
readable and the stream looks as healthy as any. By default the kernel keeps
retransmitting what the server writes for about 15 minutes
(``net.ipv4.tcp_retries2``), and a stream that writes nothing is never
probed at all; all that time the stream holds its thread and its source.

Two options make the kernel give up on such a client after ``timeout``
seconds, and mark the socket failed; the relay, which waits on the socket,
then ends the stream at once:

- ``TCP_USER_TIMEOUT``: data that stays unacknowledged that long drops the
  connection. Every stream that writes is covered: an SSE stream writes a
  keep-alive every ``SSE_KEEPALIVE`` seconds even when its source is quiet.
- TCP keepalive (``SO_KEEPALIVE``, ``TCP_KEEPIDLE``, ``TCP_KEEPINTVL``,
  ``TCP_KEEPCNT``): a stream with nothing to send has the kernel send
  probes once it has heard nothing for a third of ``timeout``; with the user
  timeout set, the first probe that finds the client silent for ``timeout``
  drops it.

The price: a client that is there but reads nothing at all, while the server
has data waiting that its full buffers cannot take, is dropped after
``timeout`` seconds too (Linux counts a window that stays shut against the
user timeout). A reader that reads, however slowly, opens its window and is
kept.
"""

import contextlib
import math
import socket

# seconds a client may leave the server unanswered (config VANISH_TIMEOUT)
TIMEOUT = 30.0
# slack for the kernel's timers, which round up a little, and for the
# feed's streams, which look at their socket every quarter of a second
NOTICE = 1.0


def probe_times(timeout):
    """``(idle, interval, count)``: keepalive probes start after ``idle`` s of
    silence and go every ``interval`` s; ``count`` unanswered probes drop the
    connection where there is no user timeout (macOS, older systems)."""
    idle = max(1, round(timeout / 3))
    interval = max(1, round(timeout / 6))
    count = math.ceil((timeout - idle) / interval) + 1
    return idle, interval, count


def vanish_bound(timeout, writes_every):
    """At most how many seconds after a client vanished its stream is freed,
    for a stream that writes at least every ``writes_every`` s (an SSE
    stream's keep-alive) or writes nothing at all.

    A writing stream's first write after the vanishing goes unanswered within
    ``writes_every`` s, and the kernel gives up ``timeout`` s after it; a
    quiet stream's probes find the client silent within ``timeout`` s plus
    one probe interval. With the defaults (30 s, SSE keep-alives every 15 s):
    46 s.
    """
    _, interval, _ = probe_times(timeout)
    return max(writes_every, interval) + timeout + NOTICE


def drop_when_silent(sock, timeout):
    """Have the kernel drop ``sock``'s connection once the client has answered
    nothing for about ``timeout`` s; a ``timeout`` of 0 or None leaves the
    system's defaults.

    Not a TCP socket (a Unix socket behind a proxy, a test's stand-in), or an
    option the system lacks: nothing to do, or as much as it has.
    """
    if not timeout or sock is None:
        return
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    idle, interval, count = probe_times(timeout)
    options = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        # macOS names the idle time TCP_KEEPALIVE
        (socket.IPPROTO_TCP, _option("TCP_KEEPIDLE", "TCP_KEEPALIVE"), idle),
        (socket.IPPROTO_TCP, _option("TCP_KEEPINTVL"), interval),
        (socket.IPPROTO_TCP, _option("TCP_KEEPCNT"), count),
        (socket.IPPROTO_TCP, _option("TCP_USER_TIMEOUT"), round(timeout * 1000)),
    ]
    for level, option, value in options:
        if option is not None:
            # a socket the client already closed refuses options: the relay
            # notices that on its own
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)


def _option(*names):
    """The first of ``names`` that this system's socket module has, or None."""
    for name in names:
        if hasattr(socket, name):
            return getattr(socket, name)
    return None
