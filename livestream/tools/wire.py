"""What arrives on the wire: when each piece of a response comes.

For the proxy tests and lesson 04: a stream that a proxy passes on as it
comes arrives in many pieces, one it collects first arrives in one.
"""

import time


def chunk_times(url, headers=None, timeout=30.0, json=None):
    """GET ``url`` (or POST ``json`` to it); its status, its body, and when
    each piece of the body came (seconds after the request went out)."""
    import requests

    start = time.monotonic()
    times, body = [], b""
    method = "GET" if json is None else "POST"
    with requests.request(
        method, url, headers=headers, json=json, stream=True, timeout=timeout
    ) as response:
        for chunk in response.iter_content(chunk_size=None):
            times.append(time.monotonic() - start)
            body += chunk
    return response.status_code, body, times


def moments(times, gap=0.03):
    """How many separate moments ``times`` (seconds, sorted) fall in: a time
    less than ``gap`` after the one before is the same moment."""
    return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] >= gap)
