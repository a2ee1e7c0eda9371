"""Egress policy (SSRF): the real HTTP and SQL plugins against loopback servers the test starts.

A restricted policy must refuse every spelling of an internal address before any byte leaves, re-check each
redirect, connect to the address it checked (no DNS rebinding) and never return a response body in its
error. The names resolve through a fake DNS, so no test depends on the machine's resolver.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from orchestrator.egress import ALLOW_SETTING, EgressPolicy, EgressRefused, Endpoint, parse_address
from orchestrator.plugins import PluginError, StepContext
from orchestrator.plugins.http import HttpExtract, HttpExtractArgs, HttpLoad, HttpLoadArgs, egress_client
from orchestrator.plugins.sql import SqlExecute, SqlExtract, SqlLoad
from tests.integration.conftest import POSTGRES_URL
from tests.orchestrator.plugins.conftest import make_ctx

SECRET_BODY = "INTERNAL-SECRET-BODY"
REDIRECT_BODY = "REDIRECT-BODY"
PUBLIC = "203.0.113.10"  # a documentation address: not refused, never connected to in these tests


class Server:
    """A loopback HTTP(S) server that records every request; ``redirects`` maps a path to a Location."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.redirects: dict[str, str] = {}
        self.sni: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if target := server.redirects.get(self.path):
                    self._reply(302, REDIRECT_BODY.encode(), Location=target)
                else:
                    self._reply(200, json.dumps([{"id": 1, "note": SECRET_BODY}]).encode())

            do_POST = do_PUT = do_GET

            def _reply(self, status: int, body: bytes, **headers: str) -> None:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    server = Server()
    yield server
    server.close()


@pytest.fixture
def server(shared_server: Server) -> Server:
    shared_server.requests.clear()
    shared_server.redirects.clear()
    return shared_server


@pytest.fixture
def other_server() -> Iterator[Server]:
    server = Server()
    yield server
    server.close()


def fake_dns(table: dict[str, list[str]] | None = None) -> Callable[[str, int], Sequence[str]]:
    """An attacker's DNS: every name not in ``table`` points at loopback."""
    return lambda host, port: (table or {}).get(host, ["127.0.0.1"])


DNS = fake_dns({"intranet.example": ["10.1.2.3"], "mixed.example": [PUBLIC, "127.0.0.1"]})


def rebinding_dns(first: str, then: str) -> tuple[Callable[[str, int], list[str]], list[str]]:
    """A DNS whose first answer is ``first`` and every later one ``then``; and the names it was asked."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [first] if len(calls) == 1 else [then]

    return resolve, calls


def restricted(*allow: str, deny: Sequence[str] = (), dns: Any = DNS) -> EgressPolicy:
    return EgressPolicy.restricted_from(allow, deny, resolver=dns)


def ctx_for(tmp_path: Path, policy: EgressPolicy) -> StepContext:
    return make_ctx(tmp_path, network=policy)


async def extract(tmp_path: Path, policy: EgressPolicy, url: str, **args: Any) -> pl.DataFrame:
    plugin = HttpExtract({"url": url, "retries": 0, "timeout": 5, **args})
    return await plugin.extract(ctx_for(tmp_path, policy))


# -- refused spellings ------------------------------------------------------------------------------------

#: URLs of internal addresses; ``{port}`` is the loopback server's. Each must be refused before connecting.
SPELLINGS = [
    *(
        f"http://{host}:{{port}}/"
        for host in [
            # IPv4 loopback, in every notation the C resolver accepts
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "127.1",
            "127.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.0.0.1",
            "0x7f.1",
            "0177.0.0.1",
            "0177.1",
            "017700000001",
            "127.0.0.1.",
            "%31%32%37.0.0.1",
            "\uff11\uff12\uff17.0.0.1",  # fullwidth digits
            "127\u30020\u30020\u30021",  # ideographic full stops
            # names of this machine and of metadata services
            "localhost",
            "LOCALHOST.",
            "LocalHost",
            "api.localhost",
            "metadata.google.internal",
            "METADATA.GOOGLE.INTERNAL.",
            "metadata",
            "instance-data",
            "intranet.example",  # resolves to 10.1.2.3
            "mixed.example",  # one public and one loopback answer
            "rebound.example",  # the fake DNS points every other name at loopback
            # unspecified
            "0.0.0.0",
            "0",
            "0x0",
            # private, shared, link-local, metadata, benchmark, multicast, reserved, broadcast
            "10.0.0.1",
            "10.255.255.255",
            "012.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.1.254",
            "169.254.169.254",
            "169.254.0.1",
            "0xa9fea9fe",
            "2852039166",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            # IPv6, and IPv6 forms that embed IPv4
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[::]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[0:0:0:0:0:ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "[::ffff:169.254.169.254]",
            "[::127.0.0.1]",
            "[::7f00:1]",
            "[::ffff:0:7f00:1]",
            "[64:ff9b::7f00:1]",
            "[64:ff9b::a9fe:a9fe]",
            "[64:ff9b:1::1]",
            "[2002:7f00:1::]",
            "[2002:a9fe:a9fe::1]",
            "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
            "[fe80::1]",
            "[fe80::1%25eth0]",
            "[fc00::1]",
            "[fd00::1]",
            "[fd12:3456:789a::1]",
            "[fd00:ec2::254]",
            "[fec0::1]",
            "[ff02::1]",
            "[100::1]",
        ]
    ),
    # userinfo, fragment and backslash tricks, as httpx reads them
    "http://evil.com@127.0.0.1:{port}/",
    "http://user:pass@[::1]:{port}/",
    "http://127.0.0.1:{port}#@evil.com/",
    "http://127.0.0.1:{port}\\@evil.com/",
    "http://127.0.0.1:{port}%2f@evil.com/",
    "https://127.0.0.1:{port}/",
]
#: spellings that an unrestricted client really delivers to the loopback server
REACHABLE_WHEN_OPEN = [
    "http://127.1:{port}/",
    "http://127.0.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://0x7f.1:{port}/",
    "http://0:{port}/",
    "http://0.0.0.0:{port}/",
    "http://evil.com@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}#@evil.com/",
]


def test_at_least_60_distinct_spellings_are_tested():
    assert len(set(SPELLINGS)) == len(SPELLINGS) >= 60


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_http_extract_refuses_without_sending_a_request(spelling, server, tmp_path):
    with pytest.raises(PluginError) as refused:
        await extract(tmp_path, restricted(), spelling.format(port=server.port))
    message = str(refused.value)
    assert "refused" in message and ALLOW_SETTING in message
    assert SECRET_BODY not in message
    assert server.requests == []


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_the_client_refuses_at_connect_time(spelling, server):
    """Beneath the plugins' early check, the connection itself refuses (what redirects rely on)."""
    url = spelling.format(port=server.port)
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        expected, match = httpx.InvalidURL, None  # httpx cannot send it at all
    else:
        expected, match = EgressRefused, ALLOW_SETTING
    async with egress_client(restricted(), timeout=5) as client:
        with pytest.raises(expected, match=match):
            await client.get(url)
    assert server.requests == []


@pytest.mark.parametrize("spelling", SPELLINGS[::6])
async def test_http_load_refuses_without_sending_a_request(spelling, server, tmp_path):
    plugin = HttpLoad({"url": spelling.format(port=server.port), "retries": 0, "timeout": 5})
    with pytest.raises(PluginError, match=ALLOW_SETTING):
        await plugin.load(ctx_for(tmp_path, restricted()), pl.DataFrame({"id": [1, 2]}))
    assert server.requests == []


@pytest.mark.parametrize("spelling", REACHABLE_WHEN_OPEN)
async def test_the_spellings_do_reach_the_server_when_open(spelling, server, tmp_path):
    """The control: these spellings are real ways in, which only the policy closes."""
    frame = await extract(tmp_path, EgressPolicy.open(), spelling.format(port=server.port))
    assert frame["note"].to_list() == [SECRET_BODY]
    assert len(server.requests) == 1


async def test_a_refusal_is_not_retried(server, tmp_path):
    calls: list[str] = []

    def dns(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["10.0.0.7"]

    async with egress_client(restricted(dns=dns)) as client:
        with pytest.raises(EgressRefused):
            await client.get(f"http://intranet.example:{server.port}/")
    with pytest.raises(PluginError, match="private address"):
        await extract(
            tmp_path, restricted(dns=dns), f"http://api.example:{server.port}/", retries=3, backoff=0
        )
    assert calls == ["intranet.example", "api.example"]


# -- redirects --------------------------------------------------------------------------------------------


async def test_a_redirect_to_an_internal_host_is_refused(server, other_server, tmp_path):
    server.redirects["/go"] = f"http://127.0.0.1:{other_server.port}/secret"
    policy = restricted("localhost", dns=fake_dns({"localhost": ["127.0.0.1"]}))
    with pytest.raises(PluginError) as refused:
        await extract(tmp_path, policy, f"http://localhost:{server.port}/go")
    message = str(refused.value)
    assert f"127.0.0.1 port {other_server.port}" in message and ALLOW_SETTING in message
    assert REDIRECT_BODY not in message and SECRET_BODY not in message
    assert server.requests == [("/go", f"localhost:{server.port}")]
    assert other_server.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "http://metadata.google.internal:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://2130706433:{port}/",
        "http://intranet.example:{port}/",
    ],
)
async def test_every_redirect_hop_is_checked(location, server, other_server, tmp_path):
    server.redirects["/one"] = "/two"
    server.redirects["/two"] = location.format(port=other_server.port)
    policy = restricted("public.example", dns=fake_dns({"public.example": ["127.0.0.1"], **_INTRANET}))
    with pytest.raises(PluginError, match="refused"):
        await extract(tmp_path, policy, f"http://public.example:{server.port}/one")
    assert [path for path, _ in server.requests] == ["/one", "/two"]
    assert other_server.requests == []


_INTRANET = {"intranet.example": ["10.1.2.3"]}


async def test_a_redirect_to_an_allowed_address_is_followed(server, other_server, tmp_path):
    server.redirects["/go"] = f"http://127.0.0.1:{other_server.port}/data"
    policy = restricted("localhost", "127.0.0.1/32", dns=fake_dns({"localhost": ["127.0.0.1"]}))
    frame = await extract(tmp_path, policy, f"http://localhost:{server.port}/go")
    assert frame.height == 1
    assert other_server.requests == [("/data", f"127.0.0.1:{other_server.port}")]


# -- allowed addresses, DNS rebinding, TLS, proxies --------------------------------------------------------


async def test_allowed_networks_and_names_are_reached(server, tmp_path):
    for allow, url in [
        ("127.0.0.0/8", "http://127.1:{port}/"),
        ("127.0.0.1", "http://2130706433:{port}/"),
        ("api.internal", "http://API.internal.:{port}/"),
    ]:
        policy = restricted(allow, dns=fake_dns({"api.internal": ["127.0.0.1"]}))
        assert (await extract(tmp_path, policy, url.format(port=server.port))).height == 1
    assert len(server.requests) == 3


async def test_dns_rebinding_connects_to_the_address_that_was_checked(server, tmp_path):
    rebinding, calls = rebinding_dns("127.0.0.1", "169.254.169.254")
    frame = await extract(
        tmp_path, restricted("127.0.0.1", dns=rebinding), f"http://rebind.example:{server.port}/"
    )
    # had anything resolved the name again, it would have found 169.254.169.254 (or no such host)
    assert frame.height == 1 and calls == ["rebind.example"]
    assert server.requests == [("/", f"rebind.example:{server.port}")]
    policy = restricted(dns=fake_dns({"first.example": [PUBLIC], "then.example": ["127.0.0.1"]}))
    assert policy.resolve_checked("first.example", 80) == PUBLIC
    with pytest.raises(EgressRefused, match="resolves to a loopback"):
        policy.resolve_checked("then.example", 80)


def _certificate(name: str, directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_verifies_the_name_while_connecting_to_the_checked_address(tmp_path):
    cert, key = _certificate("api.example", tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    https = Server(tls=server_tls)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        policy = restricted("127.0.0.1", dns=fake_dns({"api.example": ["127.0.0.1"]}))
        async with egress_client(policy, verify=trust) as client:
            response = await client.get(f"https://api.example:{https.port}/")
            assert response.status_code == 200
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|match"):
                await client.get(f"https://127.0.0.1:{https.port}/")  # the certificate names api.example
        assert https.sni[0] == "api.example"
        assert https.requests == [("/", f"api.example:{https.port}")]
    finally:
        https.close()


async def test_restricted_clients_ignore_proxies_from_the_environment(
    server, other_server, monkeypatch, tmp_path
):
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{other_server.port}")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    policy = restricted("127.0.0.1", dns=fake_dns({"api.example": ["127.0.0.1"]}))
    assert (await extract(tmp_path, policy, f"http://api.example:{server.port}/")).height == 1
    assert other_server.requests == [] and len(server.requests) == 1


async def test_network_errors_are_httpx_errors_and_retried_as_before(tmp_path):
    """The restricted transport maps httpcore's errors the way httpx's own does (a library-change canary)."""
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        messages = []
        for policy in (EgressPolicy.open(), restricted("127.0.0.1")):
            with pytest.raises(PluginError) as failed:
                await extract(tmp_path, policy, url, retries=1, backoff=0)
            messages.append(str(failed.value).split(": ConnectError")[0])
    assert messages[0] == messages[1] == f"GET {url} failed after 2 attempts"


# -- the site's own services ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deny", "url"),
    [
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}/"),
        ("localhost:{port}", "http://127.0.0.1:{port}/"),
        ("127.0.0.1:{port}", "http://[::ffff:127.0.0.1]:{port}/"),
        ("127.0.0.1:{port}", "http://127.1:{port}/"),
        ("127.0.0.1:{port}", "http://app.internal:{port}/"),
        ("app.internal:{port}", "http://app.internal:{port}/"),
    ],
)
async def test_denied_endpoints_are_refused_even_when_allowed(deny, url, server, tmp_path):
    policy = restricted(
        "127.0.0.0/8", "::1", "app.internal", deny=[deny.format(port=server.port)], dns=fake_dns()
    )
    with pytest.raises(PluginError, match="this site's own services"):
        await extract(tmp_path, policy, url.format(port=server.port))
    assert server.requests == []


# -- SQL DSNs ---------------------------------------------------------------------------------------------


@pytest.fixture
def drivers(monkeypatch) -> list[tuple[str, Any]]:
    """Replaces both drivers' connect(): records what they were asked, then fails like a driver."""
    import psycopg
    import pymysql

    calls: list[tuple[str, Any]] = []

    def pg(conninfo: str, **kw: Any) -> Any:
        calls.append(("postgresql", conninfo))
        raise psycopg.OperationalError("stub driver")

    def my(**kw: Any) -> Any:
        calls.append(("mysql", kw))
        raise pymysql.err.OperationalError(2003, "stub driver")

    monkeypatch.setattr(psycopg, "connect", pg)
    monkeypatch.setattr(pymysql, "connect", my)
    return calls


DB_DNS = fake_dns({"db.example": [PUBLIC], "intranet.example": ["10.1.2.3"]})
REFUSED_DSNS = [
    "postgresql://u@127.0.0.1:5432/app",
    "postgresql://u@localhost/app",
    "postgres://u@LOCALHOST./app",
    "postgresql://u@[::1]/app",
    "postgresql://u@[::ffff:127.0.0.1]/app",
    "postgresql://u@2130706433/app",
    "postgresql://u@0x7f000001/app",
    "postgresql://u@127.1/app",
    "postgresql://u@169.254.169.254/app",
    "postgresql://u@metadata.google.internal/app",
    "postgresql://u@intranet.example/app",
    "postgresql:///app",
    "postgresql://%2Fvar%2Frun%2Fpostgresql/app",
    "postgresql:///app?host=/var/run/postgresql",
    "postgresql:///app?host=@abstract",
    "postgresql://db.example/app?host=127.0.0.1",
    "postgresql://db.example/app?hostaddr=127.0.0.1",
    "postgresql://db.example/app?hostaddr=169.254.169.254",
    "postgresql://db.example,127.0.0.1/app",
    "postgresql://db.example,/app",
    "postgresql://db.example/app?host=db.example,10.0.0.5&port=5432,5433",
    "postgresql://db.example/app?host=db.example,localhost",
    "postgresql://db.example/app?service=pipedeck",
    "postgresql://db.example/app?passfile=/etc/passwd",
    "postgresql://db.example/app?sslcert=/etc/ssl/client.pem",
    "postgresql://db.example/app?sslkey=/etc/ssl/private/client.key",
    "postgresql://db.example/app?sslrootcert=/etc/ssl/certs/root.pem",
    "postgresql://db.example/app?sslcrl=/etc/ssl/crl.pem",
    "mysql://root@127.0.0.1/test",
    "mysql://root@localhost/test",
    "mysql://root@/test",
    "mariadb://root@[::1]/test",
    "mysql://root@[::ffff:127.0.0.1]:3306/test",
    "mysql://root@2130706433/test",
    "mysql://root@10.0.0.1/test",
    "mysql://root@intranet.example/test",
    "mysql://root@db.example/test?unix_socket=/run/mysqld/mysqld.sock",
    "mysql://root@db.example/test?read_default_file=/etc/mysql/my.cnf",
    "mysql://root@db.example/test?local_infile=1",
]


@pytest.mark.parametrize("dsn", REFUSED_DSNS)
async def test_sql_extract_refuses_before_connecting(dsn, drivers, tmp_path):
    plugin = SqlExtract({"dsn": dsn, "query": "SELECT 1"})
    with pytest.raises(PluginError, match="refused") as refused:
        await plugin.extract(ctx_for(tmp_path, restricted(dns=DB_DNS)))
    assert "cannot connect to" in str(refused.value)
    assert drivers == []


async def test_sql_load_and_execute_refuse_too(drivers, tmp_path):
    ctx = ctx_for(tmp_path, restricted(dns=DB_DNS))
    dsn = "postgresql://u@127.0.0.1/app"
    with pytest.raises(PluginError, match=ALLOW_SETTING):
        await SqlLoad({"dsn": dsn, "table": "t"}).load(ctx, pl.DataFrame({"id": [1]}))
    with pytest.raises(PluginError, match=ALLOW_SETTING):
        SqlExecute({"dsn": dsn, "sql": "SELECT 1"}).execute(ctx)
    assert drivers == []


async def test_allowed_dsns_connect_to_the_checked_address(drivers, tmp_path):
    for dsn in ("postgresql://u:pw@db.example:6543/app?sslmode=verify-full", "mysql://root@db.example/test"):
        rebinding, calls = rebinding_dns(PUBLIC, "127.0.0.1")
        with pytest.raises(PluginError, match="stub driver"):
            await SqlExtract({"dsn": dsn, "query": "SELECT 1"}).extract(
                ctx_for(tmp_path, restricted(dns=rebinding))
            )
        assert calls == ["db.example"]
    (_, conninfo), (_, mysql) = drivers
    # libpq connects to hostaddr and keeps host for TLS verification and authentication
    assert f"hostaddr={PUBLIC}" in conninfo and "host=db.example" in conninfo and "port=6543" in conninfo
    assert "sslmode=verify-full" in conninfo and "passfile=/nonexistent" in conninfo
    assert mysql["host"] == PUBLIC


async def test_sqlite_is_not_network_egress(tmp_path):
    frame = await SqlExtract({"dsn": "sqlite:///:memory:", "query": "SELECT 1 AS one"}).extract(
        ctx_for(tmp_path, restricted())
    )
    assert frame["one"].to_list() == [1]


@pytest.fixture(scope="module")
def postgres() -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {str(exc).strip().splitlines()[0]}")
    return POSTGRES_URL


async def test_an_allowed_postgresql_server_is_reached(postgres, tmp_path):
    host = httpx.URL(postgres).host
    for policy, dsn in [
        (restricted(host), postgres),
        (
            restricted("pg.internal", dns=fake_dns({"pg.internal": [host]})),
            postgres.replace(host, "pg.internal"),
        ),
    ]:
        frame = await SqlExtract({"dsn": dsn, "query": "SELECT 1 AS one"}).extract(ctx_for(tmp_path, policy))
        assert frame["one"].to_list() == [1]


async def test_the_sites_own_database_is_refused_even_when_allowed(postgres, drivers, tmp_path):
    parts = httpx.URL(postgres)
    own = f"{parts.host}:{parts.port or 5432}/pipedeck"
    policy = restricted(parts.host, deny=[own])
    with pytest.raises(PluginError, match="this site's own services"):
        dsn = f"postgresql://postgres@{parts.host}:{parts.port or 5432}/pipedeck"
        await SqlExtract({"dsn": dsn, "query": "SELECT 1"}).extract(ctx_for(tmp_path, policy))
    assert drivers == []


# -- literal_problem (the editor's check, without DNS) ----------------------------------------------------

SITE = restricted("10.20.0.0/16", "db.internal", deny=["10.20.0.5:5432/pipedeck", "10.20.0.6:6379"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://127.1/", "127.1 (= 127.0.0.1) port 80: it is a loopback address"),
        ("https://[::1]/x", "::1 port 443: it is the loopback address"),
        ("http://localhost:8000/", "localhost port 8000: it names this machine"),
        ("http://a.localhost/", "it names this machine"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata service"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "embedding 169.254.169.254"),
        ("http://10.20.0.6:6379/", "this site's own services"),
        ("postgresql:///app", "without a host"),
        ("postgresql://u@h/app?sslkey=/k", "sslkey"),
        ("postgresql://u@h/app?hostaddr=10.0.0.1", "10.0.0.1 port 5432: it is a private address"),
        ("postgresql://u@h/app?host=/tmp", "local socket"),
        ("postgresql://u@10.20.0.5:5432/pipedeck", "this site's own services"),
        ("postgresql://u@db.internal,127.0.0.1/app", "127.0.0.1 port 5432"),
        ("postgresql://u@db.internal,/app", "without a host"),
        ("mysql://root@localhost/db", "localhost port 3306"),
        ("mysql://root@h/db?local_infile=1", "local_infile"),
    ],
)
def test_literal_problems_say_what_why_and_how_to_fix(text, expected):
    problem = SITE.literal_problem(text)
    assert problem is not None and expected in problem
    if "own services" not in problem and "DSN" not in problem:
        assert ALLOW_SETTING in problem


@pytest.mark.parametrize(
    "text",
    [
        "https://api.example.com/orders",
        "http://${{ secrets.API_HOST }}/x",
        "${{ secrets.WAREHOUSE_DSN }}",
        "sqlite:///warehouse.db",
        "postgresql://u@db.example.com/app",
        "postgresql://u@10.20.0.5:5432/warehouse",  # allowed network; only the app's own database is denied
        "http://10.20.3.4:8080/",
        "http://DB.INTERNAL./",
        "mysql://root@db.internal/test",
        "ftp://127.0.0.1/",
    ],
)
def test_literal_problem_is_none_when_nothing_can_be_said_without_dns(text):
    assert SITE.literal_problem(text) is None


def test_literal_problem_never_resolves_names():
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"resolved {host}")

    policy = restricted("10.0.0.0/8", deny=["redis.internal:6379"], dns=no_dns)
    assert policy.literal_problem("http://10.1.1.1:6379/") is None
    assert "own services" in (policy.literal_problem("http://redis.internal:6379/") or "")
    assert policy.literal_problem("postgresql://u@db.example/app") is None


def test_a_restricted_client_keeps_its_own_transport():
    for bypass in ({"proxy": "http://proxy.example:3128"}, {"trust_env": True}, {"mounts": {}}):
        with pytest.raises(TypeError, match="picks its own transport"):
            egress_client(restricted(), **bypass)


def test_an_open_policy_has_no_literal_problems():
    assert EgressPolicy.open().literal_problem("http://127.0.0.1/") is None


# -- building and sending the policy ----------------------------------------------------------------------


def test_the_policy_parses_settings_text():
    policy = EgressPolicy.restricted_from(
        "10.0.0.0/8, 127.0.0.1 ::1\n[fd00::1] DB.Internal.", ["db:5432/pipedeck", "[::1]:6379"]
    )
    assert [str(n) for n in policy.allow_networks] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::1/128"]
    assert policy.allow_hosts == {"db.internal"}
    assert policy.deny_endpoints == (Endpoint("db", 5432, "pipedeck"), Endpoint("::1", 6379))


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "not a host!", "*.example.com", "300.1.1.1", "-bad.example"])
def test_a_bad_allow_entry_is_a_clear_error(entry):
    with pytest.raises(ValueError, match=f"{ALLOW_SETTING} entry"):
        EgressPolicy.restricted_from([entry])


@pytest.mark.parametrize("entry", ["db", "db:port", "db:5432?x=1"])
def test_a_bad_denied_endpoint_is_a_clear_error(entry):
    with pytest.raises(ValueError, match="denied endpoint"):
        EgressPolicy.restricted_from((), [entry])


def test_the_policy_travels_as_json():
    policy = EgressPolicy.restricted_from("10.0.0.0/8 db.internal", ["db:5432/pipedeck", "redis:6379"])
    data = json.loads(json.dumps(policy.to_dict()))
    assert data == {
        "restricted": True,
        "allow_networks": ["10.0.0.0/8"],
        "allow_hosts": ["db.internal"],
        "deny_endpoints": [
            {"host": "db", "port": 5432, "database": "pipedeck"},
            {"host": "redis", "port": 6379, "database": None},
        ],
    }
    assert EgressPolicy.from_dict(data) == policy
    assert EgressPolicy.from_dict(EgressPolicy.open().to_dict()) == EgressPolicy.open()
    with pytest.raises(ValueError, match="not an egress policy"):
        EgressPolicy.from_dict({"allow_hosts": []})


def test_numeric_host_names_are_read_as_the_resolver_reads_them():
    for spelling in [
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "017700000001",
    ]:
        assert str(parse_address(spelling)) == "127.0.0.1", spelling
        # the C resolver agrees: a policy reading them otherwise could be bypassed
        assert socket.getaddrinfo(spelling, 80, socket.AF_INET)[0][4][0] == "127.0.0.1", spelling
    assert parse_address("256.1.1.1") is None and parse_address("1.2.3.4.5") is None


def test_http_headers_and_params_are_secret_capable_and_urls_are_marked():
    for args in (HttpExtractArgs, HttpLoadArgs):
        props = args.model_json_schema()["properties"]
        assert props["headers"]["secret"] is True
        assert props["url"]["format"] == "url" and "secret" not in props["url"]
    props = HttpExtractArgs.model_json_schema()["properties"]
    assert props["params"]["secret"] is True and "secret" not in props["body"]
