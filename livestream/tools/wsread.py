"""Read a WebSocket to its end and count its messages, as ``curl`` reads an
HTTP stream: ``python -m livestream.tools.wsread ws://...``.

The benchmark runs it in a process of its own, so that the server's CPU
figure holds nothing of the client's work.
"""

import sys

import simple_websocket


def read(url, timeout=60.0):
    """How many text messages ``url`` sends before it closes, and the close
    code; the binary message that marks the end is not one of them."""
    ws = simple_websocket.Client.connect(url)
    received = 0
    try:
        while True:
            message = ws.receive(timeout=timeout)
            if message is None:
                raise TimeoutError(f"no message for {timeout} s from {url}")
            received += isinstance(message, str)
    except simple_websocket.ConnectionClosed as closed:
        return received, closed.reason


def main(argv=None):
    (url,) = argv if argv is not None else sys.argv[1:]
    received, code = read(url)
    print(f"{received} messages, close code {code}")
    return 0 if code == 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
