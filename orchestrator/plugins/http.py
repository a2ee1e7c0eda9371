"""Built-in plugins: JSON HTTP APIs (paginated extract with retries and ceilings; batched load).

Every request goes through the step's egress policy (``egress_client``): a restricted policy checks each
connection's host, redirects included, and connects to the address it checked.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import httpcore
import httpx
import polars as pl
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from orchestrator.egress import EgressPolicy, EgressRefused
from orchestrator.plugins.base import SECRET_FIELD, ExtractPlugin, Frame, LoadPlugin, PluginError, StepContext
from orchestrator.plugins.expressions import polars_errors

_CONFIG = ConfigDict(extra="forbid")
MAX_RETRY_WAIT = 60.0
_HEADERS_HELP = "HTTP headers, e.g. Authorization: Bearer ${{ secrets.API_TOKEN }}"
_URL: JsonDict = {"format": "url"}


class _Pagination(BaseModel):
    model_config = _CONFIG

    max_pages: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Fail rather than fetch more pages than this",
        examples=[100],
    )


class PagePagination(_Pagination):
    type: Literal["page"] = Field(
        description="Numbered pages: ?page=1, 2, 3... until one is empty", examples=["page"]
    )
    param: str = Field(
        default="page", description="Query parameter holding the page number", examples=["page"]
    )
    start: int = Field(default=1, description="Number of the first page", examples=[1, 0])
    size_param: str | None = Field(
        default=None, description="Query parameter for the page size (optional)", examples=["per_page"]
    )
    size: int | None = Field(
        default=None, ge=1, description="Page size; a shorter page is the last one", examples=[100]
    )


class CursorPagination(_Pagination):
    type: Literal["cursor"] = Field(
        description="Each response names the cursor of the next page", examples=["cursor"]
    )
    param: str = Field(
        default="cursor", description="Query parameter the cursor is sent in", examples=["cursor"]
    )
    cursor_path: str = Field(
        default="next_cursor",
        description="Dotted path of the next cursor in the response; missing or empty ends the pages",
        examples=["next_cursor", "meta.next"],
    )


class LinkHeaderPagination(_Pagination):
    type: Literal["link_header"] = Field(
        description='Follow the Link: <url>; rel="next" response header (GitHub style)',
        examples=["link_header"],
    )


Pagination = Annotated[PagePagination | CursorPagination | LinkHeaderPagination, Field(discriminator="type")]


#: request options shared by http_extract and http_load
Timeout = Annotated[float, Field(gt=0, le=3600, description="Seconds per request", examples=[30])]
Retries = Annotated[
    int,
    Field(
        ge=0,
        le=20,
        description="Retries on 429, 5xx and network errors (honouring Retry-After)",
        examples=[3],
    ),
]
Backoff = Annotated[
    float,
    Field(ge=0, le=60, description="Seconds before the first retry, doubling each time", examples=[0.5]),
]


class HttpExtractArgs(BaseModel):
    model_config = _CONFIG

    url: str = Field(
        description="The API endpoint (http or https)",
        examples=["https://api.example.com/orders"],
        json_schema_extra=_URL,
    )
    method: Literal["GET", "POST"] = Field(default="GET", description="HTTP method", examples=["GET"])
    headers: dict[str, str] = Field(
        default_factory=dict,
        description=_HEADERS_HELP,
        examples=[{"Authorization": "Bearer ${{ secrets.TOKEN }}"}],
        json_schema_extra=SECRET_FIELD,
    )
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Query parameters",
        examples=[{"status": "paid"}],
        json_schema_extra=SECRET_FIELD,
    )
    body: dict[str, Any] | None = Field(
        default=None, description="JSON body sent with POST", examples=[{"since": "2024-01-01"}]
    )
    records_path: str | None = Field(
        default=None,
        description="Dotted path of the list of records in each response (the whole response when empty)",
        examples=["data", "result.items"],
    )
    pagination: Pagination | None = Field(
        default=None,
        description="Next pages by page number, cursor or Link header (none: a single request)",
        examples=[{"type": "page", "param": "page", "size_param": "per_page", "size": 100}],
    )
    timeout: Timeout = 30
    retries: Retries = 3
    backoff: Backoff = 0.5
    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Fail rather than download more than this many bytes in all",
        examples=[268435456],
    )


def _display(url: str) -> str:
    """The URL without its query string (which may carry a token)."""
    try:
        return str(httpx.URL(url).copy_with(query=None))
    except httpx.InvalidURL:
        return url.split("?", 1)[0]


def egress_client(policy: EgressPolicy, **kw: Any) -> httpx.AsyncClient:
    """An httpx client whose every connection, redirects included, is one ``policy`` allows.

    Open policy: a plain client, as ever. Restricted: no proxies from the environment, and a transport that
    resolves and checks each host at connect time, then connects to that address (TLS still verifies the
    name). ``verify`` goes to the transport; the other keywords to ``httpx.AsyncClient``.
    """
    if not policy.restricted:
        return httpx.AsyncClient(**kw)
    if bypass := {"proxy", "mounts", "transport", "trust_env"} & kw.keys():
        raise TypeError(f"a restricted client picks its own transport; drop {', '.join(sorted(bypass))}")
    transport = CheckedTransport(policy, verify=kw.pop("verify", True))
    return httpx.AsyncClient(transport=transport, trust_env=False, **kw)


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address the policy checked, so a second DNS answer cannot redirect a connection."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            address = await asyncio.wait_for(self.policy.aresolve_checked(host, port), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(f"refused to connect to the local socket {path}", path)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


#: httpcore errors as httpx raises them (most specific first), so retries see the usual TransportErrors
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = next((to for frm, to in _ERRORS if isinstance(exc, frm)), None)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self.stream:
                yield part

    async def aclose(self) -> None:
        if (aclose := getattr(self.stream, "aclose", None)) is not None:
            await aclose()


class CheckedTransport(httpx.AsyncBaseTransport):
    """httpx over an httpcore pool whose network backend enforces the egress policy (public APIs only)."""

    def __init__(self, policy: EgressPolicy, verify: Any = True) -> None:
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,  # httpx's default limits
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self.pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").replace("\n", " ").strip()
    return text + ("..." if len(body) > 200 else "")


class Fetcher:
    """Sends requests with retries and backoff, and keeps a ceiling on the bytes received."""

    def __init__(
        self, client: httpx.AsyncClient, ctx: StepContext, retries: int, backoff: float, max_bytes: int
    ):
        self.client, self.ctx = client, ctx
        self.retries, self.backoff, self.max_bytes = retries, backoff, max_bytes
        self.received = 0

    async def send(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, bytes]:
        """The response and its body, after retrying 429 / 5xx / network errors; PluginError otherwise."""
        where = f"{method} {_display(url)}"
        if problem := self.ctx.network.literal_problem(url):
            raise PluginError(f"{where}: {problem}")
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response, body = await self._once(method, url, **kw)
            except EgressRefused as exc:  # not retried: the answer will not change
                raise PluginError(f"{where}: {exc}") from None
            except httpx.TransportError as exc:
                if last:
                    raise PluginError(
                        f"{where} failed after {attempt + 1} attempts: {type(exc).__name__}: "
                        f"{exc or 'no details'}; "
                        "check the url and that the server is reachable"
                    ) from None
                await self._wait(where, None, attempt, type(exc).__name__)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if last:
                    raise PluginError(
                        f"{where} failed after {attempt + 1} attempts: HTTP {response.status_code} "
                        f"{response.reason_phrase}: {_snippet(body)}"
                    )
                await self._wait(where, _retry_after(response), attempt, f"HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                hint = (
                    "check the credentials in headers"
                    if response.status_code in (401, 403)
                    else "check the url"
                )
                raise PluginError(
                    f"{where} answered HTTP {response.status_code} {response.reason_phrase}: "
                    f"{_snippet(body)}; "
                    f"{hint}, params and headers"
                )
            return response, body
        raise AssertionError("unreachable")

    async def _once(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, bytes]:
        async with self.client.stream(method, url, **kw) as response:
            chunks = []
            async for chunk in response.aiter_bytes():
                self.received += len(chunk)
                if self.received > self.max_bytes:
                    raise PluginError(
                        f"stopped after receiving more than max_bytes={self.max_bytes} bytes from "
                        f"{_display(url)}; raise max_bytes if the API really returns that much"
                    )
                chunks.append(chunk)
            return response, b"".join(chunks)

    async def _wait(self, where: str, retry_after: float | None, attempt: int, why: str) -> None:
        delay = retry_after if retry_after is not None else self.backoff * 2**attempt
        delay = min(delay, MAX_RETRY_WAIT)
        self.ctx.logger.warning("%s: %s, retrying in %.1f s (attempt %d)", where, why, delay, attempt + 2)
        await asyncio.sleep(delay)


def _dig(document: Any, path: str, what: str) -> Any:
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            keys = ", ".join(map(str, current)) if isinstance(current, dict) else type(current).__name__
            raise PluginError(f"{what} '{path}' not found in the response (at '{part}'; keys there: {keys})")
    return current


def _records(document: Any, records_path: str | None) -> list[dict[str, Any]]:
    found = _dig(document, records_path, "records_path") if records_path else document
    if found is None:
        return []
    if isinstance(found, dict):
        return [found]
    if not isinstance(found, list):
        raise PluginError(f"expected a list of records, got a {type(found).__name__}; set records_path")
    return [r if isinstance(r, dict) else {"value": r} for r in found]


def _parse(body: bytes, url: str) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PluginError(
            f"the response of {_display(url)} is not valid JSON ({exc}); it starts with: {_snippet(body)!r}"
        ) from None


def records_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """JSON records -> a DataFrame; types inferred from every record, mixed types widened."""
    if not records:
        return pl.DataFrame()
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        with polars_errors(what="cannot build a table from the records"):
            return pl.from_dicts(records, infer_schema_length=None, strict=False)


class HttpExtract(ExtractPlugin):
    name = "http_extract"
    description = "Read records from a JSON HTTP API, following pagination, retrying 429 and 5xx."
    Args = HttpExtractArgs

    async def extract(self, ctx: StepContext) -> pl.DataFrame:
        args: HttpExtractArgs = self.args
        async with egress_client(
            ctx.network, timeout=args.timeout, headers=args.headers, follow_redirects=True
        ) as client:
            fetcher = Fetcher(client, ctx, args.retries, args.backoff, args.max_bytes)
            records = await self._pages(ctx, fetcher)
        frame = records_frame(records)
        ctx.progress(frame.height, frame.height)
        return frame

    async def _pages(self, ctx: StepContext, fetcher: Fetcher) -> list[dict[str, Any]]:
        args: HttpExtractArgs = self.args
        paging = args.pagination
        url: str | None = args.url
        params: dict[str, Any] = dict(args.params)
        if isinstance(paging, PagePagination):
            params[paging.param] = paging.start
            if paging.size_param and paging.size:
                params[paging.size_param] = paging.size
        records: list[dict[str, Any]] = []
        pages = 0
        while url is not None:
            if paging is not None and pages >= paging.max_pages:
                raise PluginError(
                    f"stopped after pagination.max_pages={paging.max_pages} pages of {_display(args.url)}; "
                    "raise max_pages if the API really has more"
                )
            kw: dict[str, Any] = {"params": params} if params else {}
            if args.method == "POST" and args.body is not None:
                kw["json"] = args.body
            response, body = await fetcher.send(args.method, url, **kw)
            document = _parse(body, url)
            page = _records(document, args.records_path)
            records.extend(page)
            pages += 1
            ctx.progress(len(records), None)
            url, params = self._next(paging, response, document, page, url, params)
        return records

    @staticmethod
    def _next(
        paging: Any,
        response: httpx.Response,
        document: Any,
        page: list[Any],
        url: str,
        params: dict[str, Any],
    ) -> tuple[str | None, dict[str, Any]]:
        """The next request (url, params), or (None, ...) when this was the last page."""
        if isinstance(paging, PagePagination):
            if not page or (paging.size and len(page) < paging.size):
                return None, params
            return url, {**params, paging.param: int(params[paging.param]) + 1}
        if isinstance(paging, CursorPagination):
            try:
                cursor = _dig(document, paging.cursor_path, "cursor_path")
            except PluginError:
                cursor = None
            if cursor in (None, "") or not page:
                return None, params
            return url, {**params, paging.param: cursor}
        if isinstance(paging, LinkHeaderPagination):
            link = response.links.get("next", {}).get("url")
            return (str(response.url.join(link)), {}) if link else (None, params)
        return None, params


class HttpLoadArgs(BaseModel):
    model_config = _CONFIG

    url: str = Field(
        description="Endpoint receiving the rows as a JSON array",
        examples=["https://api.example.com/in"],
        json_schema_extra=_URL,
    )
    batch_size: int = Field(default=1000, ge=1, le=1_000_000, description="Rows per request", examples=[1000])
    headers: dict[str, str] = Field(
        default_factory=dict,
        description=_HEADERS_HELP,
        examples=[{"Authorization": "Bearer ${{ secrets.TOKEN }}"}],
        json_schema_extra=SECRET_FIELD,
    )
    method: Literal["POST", "PUT"] = Field(default="POST", description="HTTP method", examples=["POST"])
    timeout: Timeout = 30
    retries: Retries = 3
    backoff: Backoff = 0.5


class HttpLoad(LoadPlugin):
    name = "http_load"
    description = "Send the rows to an HTTP endpoint as JSON arrays, in batches, retrying 429 and 5xx."
    Args = HttpLoadArgs

    async def load(self, ctx: StepContext, data: Frame) -> None:
        args: HttpLoadArgs = self.args
        if isinstance(data, pl.LazyFrame):
            with polars_errors(data, "reading the input"):
                data = await asyncio.to_thread(data.collect)
        headers = {"Content-Type": "application/json", **args.headers}
        sent = 0
        async with egress_client(ctx.network, timeout=args.timeout, headers=headers) as client:
            fetcher = Fetcher(client, ctx, args.retries, args.backoff, max_bytes=64 * 1024 * 1024)
            for number, batch in enumerate(data.iter_slices(args.batch_size), start=1):
                try:
                    await fetcher.send(args.method, args.url, content=batch.write_json().encode())
                except PluginError as exc:
                    already = f"; {sent} rows in {number - 1} batches were sent before it" if sent else ""
                    raise PluginError(
                        f"batch {number} (rows {sent + 1}-{sent + batch.height}): {exc}{already}"
                    ) from None
                sent += batch.height
                ctx.progress(sent, data.height)
        ctx.logger.info("sent %d rows to %s", sent, _display(args.url))
