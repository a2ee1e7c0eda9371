"""Frames between the worker and a run's child process: a 4-byte big-endian length, then UTF-8 JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
#: a frame larger than this is a protocol error (a run's request holds its spec and secrets)
MAX_FRAME = 64 * 1024 * 1024
_JSON = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False)


class ProtocolError(Exception):
    """The other side sent something that is not a frame."""


def encode(message: Any) -> bytes:
    """One frame holding ``message`` as JSON."""
    body = _JSON.encode(message).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(body)} bytes is over the {MAX_FRAME} byte limit")
    return HEADER.pack(len(body)) + body


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"a frame is not JSON: {exc}") from None


def _length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"a frame of {length} bytes is over the {MAX_FRAME} byte limit")
    return int(length)


async def read_frame(reader: asyncio.StreamReader) -> Any | None:
    """The next message, or None at the end of the stream (also after a frame cut short)."""
    try:
        header = await reader.readexactly(HEADER.size)
        return _decode(await reader.readexactly(_length(header)))
    except asyncio.IncompleteReadError:
        return None


def read_frame_blocking(sock: socket.socket) -> Any | None:
    """``read_frame`` on a blocking socket."""
    header = _recv_exactly(sock, HEADER.size)
    if header is None:
        return None
    body = _recv_exactly(sock, _length(header))
    return None if body is None else _decode(body)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
