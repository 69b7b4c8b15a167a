"""A WebSocket client written from RFC 6455 on a bare socket, for the tests
that need what a library client would hide: a handshake with a header left
out, a frame built by hand (one compressed frame that inflates to 256 MB), a
reader that stops reading for a while, and a strict parse of every byte the
server sent.

It shares no code with simple-websocket or wsproto, so a bug in them cannot
hide itself here."""

import base64
import hashlib
import os
import socket
import struct
import zlib
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class BadFrame(AssertionError):
    """The server sent bytes that are not a well-formed frame."""


def handshake_request(url, path, headers):
    """The upgrade request's bytes, with ``headers`` (None drops a header)."""
    host = urlsplit(url).netloc
    fields = {
        "Host": host,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers)
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), fields["Sec-WebSocket-Key"]


def read_head(sock):
    """The status code, the headers (lower-case names) and what came after."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status.split()[1]), headers, rest


def upgrade(url, path="/stream/ws", headers=None, timeout=30):
    """``(status, headers, rest, sock)``: the server's answer to an upgrade.

    ``headers`` adds or, with None, removes request headers."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sock = socket.create_connection((host, port), timeout=timeout)
    request, key = handshake_request(url, path, headers or {})
    sock.sendall(request)
    status, response, rest = read_head(sock)
    if status == 101:
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        assert response.get("sec-websocket-accept") == accept.decode(), response
    return status, response, rest, sock


def frame(opcode, payload, fin=True, rsv1=False, mask=None):
    """One client frame: masked, as every client frame must be."""
    mask = os.urandom(4) if mask is None else mask
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + mask + masked(payload, mask)


def masked(payload, mask):
    """``payload`` XOR the repeated 4-byte ``mask`` (its own inverse)."""
    if not payload:
        return b""
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    number = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return number.to_bytes(len(payload), "big")


def deflated(size, piece=1 << 20):
    """``size`` zero bytes compressed as permessage-deflate carries them (raw
    deflate, the trailing 00 00 ff ff cut), made a piece at a time so that
    the test itself never holds ``size`` bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(piece)
    parts = [compressor.compress(zeros) for _ in range(size // piece)]
    parts.append(compressor.compress(bytes(size % piece)))
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(parts)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


class FrameReader:
    """Reads the server's frames strictly: a server frame is unmasked, its
    reserved bits are clear (no extension was offered), its opcode is one
    RFC 6455 defines, its length is written in the fewest bytes, a control
    frame is whole and short, and a text message is UTF-8."""

    def __init__(self, sock, rest=b"", deflate=False):
        self.sock = sock
        self.buffer = bytearray(rest)
        # with permessage-deflate agreed, a message whose first frame has
        # RSV1 set is compressed, with one context for the whole connection
        self.inflater = zlib.decompressobj(-15) if deflate else None

    def _fill(self, size):
        while len(self.buffer) < size:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-frame")
            self.buffer += chunk

    def _take(self, size):
        self._fill(size)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def frame(self):
        """``(fin, opcode, compressed, payload)`` of the next frame."""
        first, second = self._take(2)
        fin, rsv, opcode = first & 0x80, first & 0x70, first & 0x0F
        compressed = self.inflater and rsv == 0x40 and opcode in (TEXT, BINARY)
        if rsv and not compressed:
            raise BadFrame(f"reserved bits set: {first:#04x}")
        if opcode not in (0x0, TEXT, BINARY, CLOSE, PING, PONG):
            raise BadFrame(f"no such opcode: {opcode:#x}")
        if second & 0x80:
            raise BadFrame("a server frame is masked")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
            if length < 126:
                raise BadFrame("a 2-byte length for a short frame")
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
            if length < 1 << 16 or length >> 63:
                raise BadFrame(f"a bad 8-byte length: {length}")
        if opcode >= CLOSE and (length > 125 or not fin):
            raise BadFrame("a control frame that is long or fragmented")
        return bool(fin), opcode, bool(compressed), self._take(length)

    def message(self):
        """``(opcode, payload)`` of the next message, pings and pongs skipped;
        a close frame is returned as ``(CLOSE, payload)``."""
        parts, first, compressed = [], None, False
        while True:
            fin, opcode, rsv1, payload = self.frame()
            if opcode in (PING, PONG):
                continue
            if opcode == CLOSE:
                return CLOSE, payload
            if (first is None) != (opcode != 0):
                raise BadFrame(f"opcode {opcode:#x} out of place in a message")
            first = first or opcode
            compressed = compressed or rsv1
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                if compressed:
                    data = self.inflater.decompress(data + b"\x00\x00\xff\xff")
                if first == TEXT:
                    try:
                        data.decode()
                    except UnicodeDecodeError as error:
                        raise BadFrame(f"text that is not UTF-8: {error}") from None
                return first, data


def close_code(payload):
    """The code and reason of a close frame's payload."""
    if not payload:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
