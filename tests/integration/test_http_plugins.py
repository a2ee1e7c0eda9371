"""HTTP plugins against a real HTTP server on loopback, started by the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest

from orchestrator.plugins import PluginError
from orchestrator.plugins.http import HttpExtract, HttpLoad
from tests.orchestrator.plugins.conftest import Progress, make_ctx

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[dict[str, str], bytes], Reply]


def ok(document: Any, headers: dict[str, str] | None = None) -> Reply:
    return 200, {"Content-Type": "application/json", **(headers or {})}, json.dumps(document).encode()


class Api:
    """A loopback HTTP server whose routes the test sets; it records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes, dict[str, str]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api.requests.append((self.command, parts.path, query, body, dict(self.headers)))
                route = api.routes.get(parts.path)
                status, headers, payload = route(query, body) if route else (404, {}, b"no such route")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.close()


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path, on_progress=Progress())


ITEMS = [{"id": i, "name": f"item{i}"} for i in range(1, 8)]


async def test_page_pagination_with_records_path(api, ctx):
    def pages(query: dict[str, str], body: bytes) -> Reply:
        page, size = int(query["page"]), int(query["per_page"])
        return ok({"data": ITEMS[(page - 1) * size : page * size], "page": page})

    api.routes["/items"] = pages
    args = {
        "url": f"{api.url}/items",
        "params": {"status": "all"},
        "records_path": "data",
        "pagination": {"type": "page", "size_param": "per_page", "size": 3},
    }
    frame = await HttpExtract(args).extract(ctx)
    assert frame["id"].to_list() == list(range(1, 8))
    assert [r[2]["page"] for r in api.requests] == ["1", "2", "3"]  # page 3 has 1 < 3 rows: the last
    assert all(r[2]["status"] == "all" for r in api.requests)


async def test_cursor_pagination(api, ctx):
    def cursor(query: dict[str, str], body: bytes) -> Reply:
        start = int(query.get("after", 0))
        nxt = start + 3 if start + 3 < len(ITEMS) else None
        return ok({"items": ITEMS[start : start + 3], "meta": {"next": nxt}})

    api.routes["/c"] = cursor
    pagination = {"type": "cursor", "param": "after", "cursor_path": "meta.next"}
    args = {"url": f"{api.url}/c", "records_path": "items", "pagination": pagination}
    frame = await HttpExtract(args).extract(ctx)
    assert frame["id"].to_list() == list(range(1, 8))
    assert len(api.requests) == 3


async def test_link_header_pagination(api, ctx):
    def linked(query: dict[str, str], body: bytes) -> Reply:
        page = int(query.get("p", 1))
        headers = {"Link": f'</links?p={page + 1}>; rel="next"'} if page < 3 else {}
        return ok([{"page": page}], headers)

    api.routes["/links"] = linked
    frame = await HttpExtract({"url": f"{api.url}/links", "pagination": {"type": "link_header"}}).extract(ctx)
    assert frame["page"].to_list() == [1, 2, 3]


async def test_429_with_retry_after_is_honoured(api, ctx):
    calls = []

    def limited(query: dict[str, str], body: bytes) -> Reply:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return 429, {"Retry-After": "1"}, b"slow down"
        return ok([{"ok": True}])

    api.routes["/limited"] = limited
    frame = await HttpExtract({"url": f"{api.url}/limited", "backoff": 0}).extract(ctx)
    assert frame.to_dicts() == [{"ok": True}]
    assert calls[1] - calls[0] >= 0.95


async def test_500_then_success(api, ctx):
    calls = []

    def flaky(query: dict[str, str], body: bytes) -> Reply:
        calls.append(1)
        return (500, {}, b"oops") if len(calls) < 3 else ok({"id": 1})

    api.routes["/flaky"] = flaky
    frame = await HttpExtract({"url": f"{api.url}/flaky", "backoff": 0.01}).extract(ctx)
    assert frame.to_dicts() == [{"id": 1}]
    assert len(calls) == 3


async def test_retries_run_out_with_a_clear_error(api, ctx):
    api.routes["/down"] = lambda q, b: (503, {}, b"maintenance")
    with pytest.raises(PluginError) as err:
        await HttpExtract({"url": f"{api.url}/down?token=abc", "retries": 2, "backoff": 0}).extract(ctx)
    assert str(err.value) == (
        f"GET {api.url}/down failed after 3 attempts: HTTP 503 Service Unavailable: maintenance"
    )
    assert len(api.requests) == 3


async def test_malformed_json(api, ctx):
    api.routes["/bad"] = lambda q, b: (200, {"Content-Type": "application/json"}, b'{"id": 1,')
    with pytest.raises(
        PluginError, match=r"^the response of http://127\.0\.0\.1:\d+/bad is not valid JSON \(.*"
    ):
        await HttpExtract({"url": f"{api.url}/bad"}).extract(ctx)


async def test_client_errors_are_not_retried(api, ctx):
    api.routes["/secret"] = lambda q, b: (401, {}, b"bad token")
    with pytest.raises(
        PluginError, match=r"answered HTTP 401 Unauthorized: bad token; check the credentials"
    ):
        await HttpExtract({"url": f"{api.url}/secret"}).extract(ctx)
    assert len(api.requests) == 1


async def test_ceilings_on_pages_and_bytes(api, ctx):
    api.routes["/endless"] = lambda q, b: ok([{"n": int(q["page"])}] * 10)
    with pytest.raises(PluginError, match=r"stopped after pagination\.max_pages=5 pages"):
        await HttpExtract(
            {"url": f"{api.url}/endless", "pagination": {"type": "page", "max_pages": 5}}
        ).extract(ctx)
    api.routes["/big"] = lambda q, b: ok([{"text": "x" * 5000}])
    with pytest.raises(PluginError, match="stopped after receiving more than max_bytes=1000 bytes"):
        await HttpExtract({"url": f"{api.url}/big", "max_bytes": 1000}).extract(ctx)


async def test_unreachable_server(ctx):
    with pytest.raises(
        PluginError, match=r"^GET http://127\.0\.0\.1:1/x failed after 1 attempts: ConnectError"
    ):
        await HttpExtract({"url": "http://127.0.0.1:1/x", "retries": 0}).extract(ctx)


async def test_records_path_missing_names_the_keys(api, ctx):
    api.routes["/r"] = lambda q, b: ok({"results": [], "count": 0})
    with pytest.raises(PluginError) as err:
        await HttpExtract({"url": f"{api.url}/r", "records_path": "data"}).extract(ctx)
    assert (
        str(err.value)
        == "records_path 'data' not found in the response (at 'data'; keys there: results, count)"
    )


async def test_http_load_sends_batches_with_headers(api, ctx):
    api.routes["/in"] = lambda q, b: (204, {}, b"")
    data = pl.DataFrame({"id": range(5), "name": list("abcde")})
    await HttpLoad({"url": f"{api.url}/in", "batch_size": 2, "headers": {"X-Token": "t"}}).load(
        ctx, data.lazy()
    )
    bodies = [json.loads(r[3]) for r in api.requests]
    assert [len(b) for b in bodies] == [2, 2, 1]
    assert bodies[0] == [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]
    assert all(r[4]["X-Token"] == "t" and r[4]["Content-Type"] == "application/json" for r in api.requests)
    assert ctx.on_progress.calls[-1] == (5, 5)


async def test_http_load_failure_says_what_was_sent(api, ctx):
    calls = []

    def picky(query: dict[str, str], body: bytes) -> Reply:
        calls.append(1)
        return (200, {}, b"") if len(calls) == 1 else (400, {}, b"bad row")

    api.routes["/in"] = picky
    data = pl.DataFrame({"id": range(4)})
    with pytest.raises(PluginError) as err:
        await HttpLoad({"url": f"{api.url}/in", "batch_size": 2}).load(ctx, data)
    assert str(err.value).startswith("batch 2 (rows 3-4): POST ")
    assert str(err.value).endswith("; 2 rows in 1 batches were sent before it")


async def test_a_preview_fetches_one_page(api, tmp_path):
    def pages(query: dict[str, str], body: bytes) -> Reply:
        page = int(query["page"])
        return ok({"data": ITEMS[(page - 1) * 3 : page * 3]})

    api.routes["/items"] = pages
    args = {"url": f"{api.url}/items", "records_path": "data", "pagination": {"type": "page", "size": 3}}
    frame = await HttpExtract(args).extract(make_ctx(tmp_path, row_limit=2))
    assert frame["id"].to_list() == [1, 2]
    assert len(api.requests) == 1
