"""Built-in plugins: JSON HTTP APIs (paginated extract with retries and ceilings; batched load).

Every request goes through the step's egress policy (``egress_client``): a restricted policy checks each
connection's host, redirects included, and connects to the address it checked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from orchestrator.plugins.base import SECRET_FIELD, ExtractPlugin, LoadPlugin, PluginError, StepContext
from orchestrator.plugins.expressions import polars_errors
from orchestrator.plugins.lazy import LazyModule

if TYPE_CHECKING:
    import asyncio

    import httpx
    import polars as pl

    from orchestrator.plugins import httpnet as net
    from orchestrator.plugins.base import Frame
    from orchestrator.plugins.httpnet import Fetcher
else:
    asyncio = LazyModule("asyncio")  # the event loop is a run's, not validation's
    pl = LazyModule("polars")
    net = LazyModule("orchestrator.plugins.httpnet")  # httpx loads when a request is made

_CONFIG = ConfigDict(extra="forbid", defer_build=True)
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
            f"the response of {net.display_url(url)} is not valid JSON ({exc}); "
            f"it starts with: {net.snippet(body)!r}"
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
        async with net.egress_client(
            ctx.network, timeout=args.timeout, headers=args.headers, follow_redirects=True
        ) as client:
            fetcher = net.Fetcher(client, ctx, args.retries, args.backoff, args.max_bytes)
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
                    f"stopped after pagination.max_pages={paging.max_pages} pages of "
                    f"{net.display_url(args.url)}; "
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
            if ctx.row_limit is not None:  # a preview: one page is enough
                return records[: ctx.row_limit]
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
        async with net.egress_client(ctx.network, timeout=args.timeout, headers=headers) as client:
            fetcher = net.Fetcher(client, ctx, args.retries, args.backoff, max_bytes=64 * 1024 * 1024)
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
        ctx.logger.info("sent %d rows to %s", sent, net.display_url(args.url))


def __getattr__(name: str) -> Any:
    # the network half's public names stay importable from here (``egress_client``...)
    if name in {"CheckedTransport", "Fetcher", "MAX_RETRY_WAIT", "egress_client"}:
        return getattr(net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
