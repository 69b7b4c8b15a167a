"""``python -m livestream``: every technique side by side, until Ctrl-C."""

import argparse
import sys
import threading

from . import create_app, serve


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m livestream",
        description="Serve the gallery of streaming techniques on 127.0.0.1.",
    )
    parser.add_argument(
        "--port", type=int, default=5000, help="0 picks a free port (default 5000)"
    )
    parser.add_argument(
        "--count", type=int, default=500, help="messages per stream (default 500)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between messages (default 1.0)",
    )
    args = parser.parse_args(argv)
    try:
        app = create_app(STREAM_COUNT=args.count, STREAM_INTERVAL=args.interval)
    except ValueError as error:
        parser.error(str(error))
    try:
        server = serve(app, port=args.port)
    except OSError as error:
        print(f"livestream: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"livestream: serving every technique at {server.url}/", flush=True)
    print("livestream: press Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print("livestream: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
