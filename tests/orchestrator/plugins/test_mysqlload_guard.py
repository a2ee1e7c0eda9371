"""LOAD DATA LOCAL: the client sends only the rows a load offers, whatever file the server asks for.

These drive the guarded result with a stand-in server (no MariaDB needed); the integration tests run the
same against the real one.
"""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from orchestrator.plugins.mysqlload import GuardedConnection, LocalFileRefused, _GuardedResult


class _Packet:
    """A LOCAL INFILE request as the server sends it: 0xFB, then the file name."""

    def __init__(self, filename: bytes) -> None:
        self.data = b"\xfb" + filename

    def is_load_local_packet(self) -> bool:
        return True

    def get_all_data(self) -> bytes:
        return self.data


class _Answer:
    def is_ok_packet(self) -> bool:
        return True


class _Server:
    """What the guarded result talks to: the offer, and the packets it writes."""

    def __init__(self, offered: tuple[bytes, bytes] | None) -> None:
        self._offered = offered
        self.sent: list[bytes] = []

    def write_packet(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def _read_packet(self) -> _Answer:
        return _Answer()


def _request(server: _Server, filename: bytes) -> list[str]:
    result = _GuardedResult.__new__(_GuardedResult)
    result.connection = server
    result.unbuffered_active = False  # what MySQLResult.__init__ sets; its __del__ reads it
    oks: list[str] = []
    result._read_ok_packet = lambda packet: oks.append("ok")  # type: ignore[method-assign]
    result._read_load_local_packet(_Packet(filename))
    return oks


@pytest.fixture(autouse=True)
def no_file_is_ever_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a file was opened: {args}")

    monkeypatch.setattr(builtins, "open", refuse)


def test_the_offered_name_gets_the_offered_bytes_and_nothing_else() -> None:
    server = _Server((b"pipedeck-1.csv", b"1,a\n" * 10_000))
    assert _request(server, b"pipedeck-1.csv") == ["ok"]
    assert b"".join(server.sent) == b"1,a\n" * 10_000
    assert server.sent[-1] == b""  # the end of the data
    assert max(len(p) for p in server.sent) <= 16 * 1024


@pytest.mark.parametrize(
    "asked", [b"/etc/passwd", b"pipedeck-2.csv", b"pipedeck-1.csv\x00", b"../pipedeck-1.csv"]
)
def test_any_other_name_gets_an_empty_answer_and_fails_the_statement(asked: bytes) -> None:
    server = _Server((b"pipedeck-1.csv", b"secret rows"))
    with pytest.raises(LocalFileRefused, match="asked for the local file"):
        _request(server, asked)
    assert server.sent == [b""]


def test_a_request_while_no_load_offers_anything_is_refused() -> None:
    server = _Server(None)
    with pytest.raises(LocalFileRefused):
        _request(server, b"/etc/hostname")
    assert server.sent == [b""]


def test_an_offer_lasts_only_for_its_block() -> None:
    conn = GuardedConnection.__new__(GuardedConnection)
    conn._offered = None
    with conn.offer(b"rows") as name:
        assert conn._offered == (name.encode(), b"rows")
        assert name.startswith("pipedeck-") and "/" not in name
    assert conn._offered is None
