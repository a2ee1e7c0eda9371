"""Where a run may connect: the egress policy applied to HTTP plugins and network database DSNs.

The CLI runs with ``EgressPolicy.open()`` (a single user's own network is theirs); the web app's runs get
a restrictive policy: loopback, private, link-local, multicast, unspecified and metadata addresses are
refused in every spelling unless the site allows them, and the app's own services are refused always.

Enforcement resolves a host once, checks every answer and hands back the one address to connect to, so a
second DNS answer (rebinding) never decides where a connection goes.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> addresses``, like ``getaddrinfo``; injectable so tests can play DNS
Resolver = Callable[[str, int], Sequence[str]]

ALLOW_SETTING = "PIPEDECK_EGRESS_ALLOW"
_ASK = f"if it is meant to be reachable, ask the site operator to add it to {ALLOW_SETTING}"
_PRIVATE = "a private address"
_NO_HOST = "refused DSN without a host: it would use this site's local socket; give a host name"

#: first match wins, so narrower ranges come before the ones holding them
_FORBIDDEN: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "an unspecified ('this host') address"),
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address (this machine)"),
        ("169.254.169.254/32", "the cloud metadata service"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.168.0.0/16", _PRIVATE),
        ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "the loopback address (this machine)"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("fd00:ec2::254/128", "the cloud metadata service"),
        ("fc00::/7", "a unique-local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
#: IPv6 ranges whose last 32 bits are an IPv4 address the traffic ends up at
_LOW32_EMBEDDING = tuple(
    ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "100-100-100-200.alibaba",
    }
)
_HOST_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
_INET_ATON_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$")
#: libpq parameters that read files on the worker (credentials, keys, service definitions)
PG_FILE_PARAMS = (
    "service",
    "servicefile",
    "passfile",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslkeylogfile",
)
#: PyMySQL options that read local files or use a local socket
MYSQL_LOCAL_PARAMS = ("unix_socket", "read_default_file", "read_default_group", "local_infile")
# libpq reads ~/.pgpass and ~/.postgresql/postgresql.{crt,key} by default: a run must not borrow the
# worker's credentials, so a restricted connection points those at a file that does not exist.
_NO_FILE = "/nonexistent/pipedeck-egress"


class EgressRefused(Exception):
    """A connection the egress policy does not allow; the message says what, why and how to fix."""

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message)
        self.host = host


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for a TCP connection, in its order of preference."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _no_dns(host: str, port: int) -> list[str]:
    raise OSError("no DNS in a literal check")


@dataclass(frozen=True)
class Endpoint:
    """One of the site's own services (its database, Redis): refused even when its address is allowed.

    ``database`` narrows a PostgreSQL/MySQL endpoint to one database; None refuses the host and port whole.
    """

    host: str
    port: int
    database: str | None = None

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``host:port`` or ``host:port/database`` (``[::1]:5432`` for IPv6)."""
        parts = urlsplit(f"//{text.strip()}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.query or parts.username:
            raise ValueError(f"denied endpoint {text!r} is not host:port or host:port/database")
        return cls(parts.hostname, port, parts.path.strip("/") or None)


def _clean_host(host: str) -> str:
    """The host as a resolver sees it: percent-escapes decoded, NFKC-folded, lower case, no brackets or
    trailing dot (``%31%32%37.0.0.1``, fullwidth digits and ``LOCALHOST.`` mean what they look like)."""
    text = unicodedata.normalize("NFKC", unquote(host)).strip().lower()
    text = text.translate({0x3002: ".", 0xFF0E: ".", 0xFF61: "."})
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """IPv4 as the C resolver reads it: 1-4 parts, each decimal, 0x-hex or 0-octal (``127.1``,
    ``0x7f000001``, ``0177.0.0.1``, ``2130706433``); None when it is not a number."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.match(p) for p in parts):
        return None
    values = [
        int(p[2:] or "0", 16) if p.startswith("0x") else int(p, 8 if p[0] == "0" else 10) for p in parts
    ]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number << 8 | value
    return ipaddress.IPv4Address(number << 8 * (4 - len(head)) | last)


def parse_address(host: str) -> Address | None:
    """The address a host denotes without DNS, in any spelling (see ``_clean_host``, ``_inet_aton``);
    IPv4-mapped IPv6 comes back as IPv4, a zone id (``fe80::1%eth0``) is dropped. None for a name."""
    text = _clean_host(host)
    if ":" in text:
        try:
            ip6 = ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
        return ip6.ipv4_mapped or ip6
    return _inet_aton(text)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (IPv4-compatible/-translated, NAT64, 6to4, Teredo)."""
    found = [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)] if any(ip in n for n in _LOW32_EMBEDDING) else []
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)
    return found


def _range_reason(ip: Address) -> str | None:
    return next((why for net, why in _FORBIDDEN if ip.version == net.version and ip in net), None)


def _is_local(ip: Address) -> bool:
    return ip.is_loopback or ip.is_unspecified


def _is_localhost(name: str) -> bool:
    return name in ("localhost", "localhost.localdomain") or name.endswith(".localhost")


def _name_reason(name: str) -> str | None:
    if _is_localhost(name):
        return "it names this machine (loopback)"
    if name in _METADATA_NAMES:
        return "it names a cloud metadata service"
    return None


def _parse_allow_entry(entry: str) -> Network | str:
    text = entry.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "/" in bare:
        try:
            return ipaddress.ip_network(bare)
        except ValueError as exc:
            raise ValueError(f"{ALLOW_SETTING} entry {entry!r} is not a network: {exc}") from None
    if (address := parse_address(bare)) is not None:
        return ipaddress.ip_network(address)
    name = _clean_host(bare)
    if not _HOST_NAME.match(name) or re.fullmatch(r"[0-9.]+", name):
        raise ValueError(
            f"{ALLOW_SETTING} entry {entry!r} is neither a network (10.0.0.0/8), an address "
            "(127.0.0.1, ::1) nor an exact host name (db.internal)"
        )
    return name


@dataclass(frozen=True)
class EgressPolicy:
    """What a run may connect to. ``restricted=False`` allows everything (the CLI's default)."""

    restricted: bool = False
    allow_networks: tuple[Network, ...] = ()
    #: exact host names (lower case, no trailing dot) allowed whatever they resolve to
    allow_hosts: frozenset[str] = frozenset()
    deny_endpoints: tuple[Endpoint, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)

    @classmethod
    def open(cls) -> EgressPolicy:
        """No restriction: the CLI's policy."""
        return cls(restricted=False)

    @classmethod
    def restricted_from(
        cls,
        allow: str | Iterable[str] = (),
        deny: Iterable[str | Endpoint] = (),
        *,
        resolver: Resolver = system_resolver,
    ) -> EgressPolicy:
        """A restrictive policy from settings text: ``allow`` holds networks, addresses and host names
        (a string is split on commas and whitespace, as in PIPEDECK_EGRESS_ALLOW), ``deny`` the site's
        own services as ``host:port[/database]``. ValueError names a bad entry."""
        entries = re.split(r"[\s,]+", allow) if isinstance(allow, str) else list(allow)
        parsed = [_parse_allow_entry(e) for e in entries if e.strip()]
        return cls(
            restricted=True,
            allow_networks=tuple(p for p in parsed if not isinstance(p, str)),
            allow_hosts=frozenset(p for p in parsed if isinstance(p, str)),
            deny_endpoints=tuple(d if isinstance(d, Endpoint) else Endpoint.parse(d) for d in deny),
            resolver=resolver,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the resolver stays behind: the receiving side uses its own)."""
        return {
            "restricted": self.restricted,
            "allow_networks": [str(n) for n in self.allow_networks],
            "allow_hosts": sorted(self.allow_hosts),
            "deny_endpoints": [
                {"host": e.host, "port": e.port, "database": e.database} for e in self.deny_endpoints
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, resolver: Resolver = system_resolver) -> EgressPolicy:
        """The inverse of ``to_dict``; ValueError when ``data`` is not one."""
        try:
            if not data["restricted"]:
                return cls(restricted=False, resolver=resolver)
            allow = [*data.get("allow_networks", ()), *data.get("allow_hosts", ())]
            deny = [
                Endpoint(str(e["host"]), int(e["port"]), e.get("database"))
                for e in data.get("deny_endpoints", ())
            ]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an egress policy: {exc!r}") from None
        return cls.restricted_from(allow, deny, resolver=resolver)

    # -- checks with DNS --------------------------------------------------------------------------------

    def resolve_checked(self, host: str, port: int, *, database: str | None = None) -> str:
        """The one address to connect to for ``host``: every resolved address must be allowed.

        ``host`` itself when the policy is open; EgressRefused when refused; OSError when it does not resolve.
        """
        if not self.restricted:
            return host
        name = _clean_host(host)
        literal = parse_address(name)
        if literal is not None:
            self._check(name, port, literal, database)
            return str(literal)
        if not name:
            raise EgressRefused("refused to connect: no host given; name the server to connect to", host)
        trusted = name in self.allow_hosts
        if not trusted and (why := _name_reason(name)):
            raise EgressRefused(_message(name, port, why, fixable=True), name)
        answers = list(self.resolver(name, port))
        if not answers:
            raise OSError(f"{name} has no address")
        for answer in answers:
            address = parse_address(answer)
            if address is None:
                raise EgressRefused(_message(name, port, "the resolver returned a non-address", False), name)
            self._check(name, port, address, database, resolved=True, trusted=trusted)
        return answers[0]

    async def aresolve_checked(self, host: str, port: int, *, database: str | None = None) -> str:
        """``resolve_checked`` with the DNS lookup in a worker thread."""
        if not self.restricted or parse_address(host) is not None:
            return self.resolve_checked(host, port, database=database)
        import asyncio  # here: validating a project (which builds policies) never needs the event loop

        return await asyncio.to_thread(self.resolve_checked, host, port, database=database)

    def checked_postgres(self, params: Mapping[str, str]) -> dict[str, str]:
        """libpq parameters (``conninfo_to_dict``) that reach only allowed servers: every host resolved and
        checked into ``hostaddr`` (``host`` kept for TLS and authentication); unchanged when open."""
        out = dict(params)
        if not self.restricted:
            return out
        if problem := self._postgres_static_problem(params):
            raise EgressRefused(problem)
        hosts, addrs, ports = _postgres_lists(params)
        database = params.get("dbname") or params.get("user") or None
        checked = [
            (
                self._literal(addr, port, database)
                if addr
                else self.resolve_checked(host, port, database=database)
            )
            for host, addr, port in zip(hosts, addrs, ports, strict=True)
        ]
        out.update(
            host=",".join(h or a for h, a in zip(hosts, checked, strict=True)),
            hostaddr=",".join(checked),
            port=",".join(map(str, ports)),
            passfile=_NO_FILE,
            sslcert=_NO_FILE,
            sslkey=_NO_FILE,
        )
        return out

    def _literal(self, text: str, port: int, database: str | None) -> str:
        address = parse_address(text)
        if address is None:
            raise EgressRefused(_message(text, port, "hostaddr must be a numeric address", False), text)
        self._check(text, port, address, database)
        return str(address)

    def _check(
        self,
        name: str,
        port: int,
        ip: Address,
        database: str | None,
        *,
        resolved: bool = False,
        trusted: bool = False,
    ) -> None:
        """EgressRefused unless ``ip`` may be reached; an allowed host name (``trusted``) skips the ranges."""
        if self._denied(name, port, ip, database):
            raise EgressRefused(
                f"refused to connect to {name} port {port}: it is one of this site's own services "
                "(its database or Redis), which runs may never use; connect to another server",
                name,
            )
        if not trusted and (why := self._address_reason(ip)) is not None:
            why = f"it resolves to {why}" if resolved else f"it is {why}"
            shown = name if resolved or name == str(ip) else f"{name} (= {ip})"
            raise EgressRefused(_message(shown, port, why, fixable=True), name)

    def _address_reason(self, ip: Address) -> str | None:
        """Why connecting to ``ip`` is refused, or None when it is allowed."""
        if self._allowed(ip):
            return None
        if why := _range_reason(ip):
            return why
        if isinstance(ip, ipaddress.IPv6Address):
            for inner in _embedded_ipv4(ip):
                if not self._allowed(inner) and (why := _range_reason(inner)):
                    return f"an IPv6 address embedding {inner}, {why}"
        return None

    def _allowed(self, ip: Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow_networks)

    def _denied(self, name: str, port: int, ip: Address | None, database: str | None) -> bool:
        for endpoint in self.deny_endpoints:
            if endpoint.port != port or (endpoint.database and database and endpoint.database != database):
                continue
            if _clean_host(endpoint.host) == name or (ip is not None and self._same_server(endpoint, ip)):
                return True
        return False

    def _same_server(self, endpoint: Endpoint, ip: Address) -> bool:
        # an endpoint on loopback answers on every loopback (and the unspecified) address too
        for known in self._endpoint_addresses(endpoint):
            if known == ip or (_is_local(known) and _is_local(ip)):
                return True
        return False

    def _endpoint_addresses(self, endpoint: Endpoint) -> list[Address]:
        if (literal := parse_address(endpoint.host)) is not None:
            return [literal]
        if _is_localhost(_clean_host(endpoint.host)):
            return [ipaddress.IPv4Address("127.0.0.1")]
        try:
            answers = self.resolver(_clean_host(endpoint.host), endpoint.port)
        except OSError:  # the name-based match above still applies
            return []
        return [a for a in map(parse_address, answers) if a is not None]

    # -- checks without DNS (editor validation) ---------------------------------------------------------

    def literal_problem(self, text: str) -> str | None:
        """What the policy refuses in a URL or DSN as written, without DNS; None when nothing can be said
        (an open policy, a name that needs resolving, a ``${{ secrets.X }}`` host, another scheme)."""
        if not self.restricted:
            return None
        offline = replace(self, resolver=_no_dns)  # denied endpoints named by host match by name only
        shown = re.sub(r"\$\{\{.*?\}\}", "pipedeck-secret", text.strip())
        scheme = shown.split("://", 1)[0].split("+", 1)[0].lower() if "://" in shown else ""
        if scheme in ("http", "https"):
            host, port = _http_host(shown)
            return offline._host_problem(host, port or (443 if scheme == "https" else 80), None)
        if scheme in ("postgresql", "postgres"):
            return offline._postgres_problem(shown)
        if scheme in ("mysql", "mariadb"):
            return offline._mysql_problem(shown)
        return None

    def _host_problem(self, host: str | None, port: int, database: str | None) -> str | None:
        if host is None or "pipedeck-secret" in host:
            return None
        name = _clean_host(host)
        address = parse_address(name)
        if address is not None:
            try:
                self._check(name, port, address, database)
            except EgressRefused as exc:
                return str(exc)
            return None
        if name in self.allow_hosts:
            return None
        if self._denied(name, port, None, database):
            return f"refused to connect to {name} port {port}: it is one of this site's own services"
        why = _name_reason(name)
        return _message(name, port, why, fixable=True) if why else None

    def _postgres_static_problem(self, params: Mapping[str, str]) -> str | None:
        files = [
            p for p in PG_FILE_PARAMS if params.get(p) and not (p == "sslrootcert" and params[p] == "system")
        ]
        if files:
            return (
                f"refused DSN parameter {files[0]}: it makes the database driver read a file or service "
                "definition on this site's server; give the connection details in the DSN itself"
            )
        hosts = params.get("host", "").split(",")
        if any(h.startswith(("/", "@")) for h in hosts):
            return "refused DSN host: a local socket path reaches this site's own server; give a host name"
        if not params.get("host") and not params.get("hostaddr"):
            return _NO_HOST
        return None

    def _postgres_problem(self, dsn: str) -> str | None:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
            if problem := self._postgres_static_problem(params):
                return problem
            hosts, addrs, ports = _postgres_lists(params)
        except (ProgrammingError, EgressRefused):
            return None  # a malformed DSN is the DSN check's to report
        database = params.get("dbname") or params.get("user") or None
        for host, addr, port in zip(hosts, addrs, ports, strict=True):
            if not (addr or host):
                return _NO_HOST
            if problem := self._host_problem(addr or host, port, database):
                return problem
        return None

    def _mysql_problem(self, dsn: str) -> str | None:
        try:
            parts = urlsplit(dsn)
            port = parts.port or 3306
        except ValueError:
            return None
        query = {key.lower() for key in parse_qs(parts.query, keep_blank_values=True)}
        if local := [p for p in MYSQL_LOCAL_PARAMS if p in query]:
            return f"refused DSN parameter {local[0]}: it reads a local file or socket on this site's server"
        return self._host_problem(parts.hostname or "127.0.0.1", port, parts.path.strip("/") or None)


def _message(name: str, port: int, why: str, fixable: bool) -> str:
    fix = _ASK if fixable else "check the host"
    return f"refused to connect to {name} port {port}: {why}, which runs on this site may not reach; {fix}"


def _http_host(url: str) -> tuple[str | None, int | None]:
    """Host and port as httpx will read them (the urllib reading when httpx refuses the URL)."""
    import httpx

    try:
        parsed = httpx.URL(url)
        return parsed.host, parsed.port
    except httpx.InvalidURL:
        pass
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port
    except ValueError:
        return None, None


def _postgres_lists(params: Mapping[str, str]) -> tuple[list[str], list[str], list[int]]:
    """libpq's parallel host / hostaddr / port lists, one entry per server to try."""
    hosts = params.get("host", "").split(",")
    addrs = params.get("hostaddr", "").split(",")
    if len(hosts) == 1 and len(addrs) > 1:
        hosts *= len(addrs)
    if len(addrs) == 1 and not addrs[0]:
        addrs *= len(hosts)
    ports_text = params.get("port", "").split(",")
    if len(ports_text) == 1:
        ports_text *= len(hosts)
    if not len(hosts) == len(addrs) == len(ports_text):
        raise EgressRefused("refused DSN: host, hostaddr and port list different numbers of servers")
    try:
        ports = [int(p) if p.strip() else 5432 for p in ports_text]
    except ValueError:
        raise EgressRefused(f"refused DSN: port {params.get('port')!r} is not a number") from None
    return hosts, addrs, ports
