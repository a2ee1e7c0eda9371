"""The HTTP plugins' network half: clients bound to the egress policy, retries, and byte ceilings.

Kept apart from ``orchestrator.plugins.http`` so that httpx is imported when an HTTP step runs, not when
the registry loads the plugins' argument models.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from orchestrator.egress import EgressPolicy, EgressRefused
from orchestrator.plugins.base import PluginError, StepContext

MAX_RETRY_WAIT = 60.0


def display_url(url: str) -> str:
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


def snippet(body: bytes) -> str:
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
        where = f"{method} {display_url(url)}"
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
                        f"{response.reason_phrase}: {snippet(body)}"
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
                    f"{snippet(body)}; "
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
                        f"{display_url(url)}; raise max_bytes if the API really returns that much"
                    )
                chunks.append(chunk)
            return response, b"".join(chunks)

    async def _wait(self, where: str, retry_after: float | None, attempt: int, why: str) -> None:
        delay = retry_after if retry_after is not None else self.backoff * 2**attempt
        delay = min(delay, MAX_RETRY_WAIT)
        self.ctx.logger.warning("%s: %s, retrying in %.1f s (attempt %d)", where, why, delay, attempt + 2)
        await asyncio.sleep(delay)
