"""Service fixtures for integration tests: real PostgreSQL, MariaDB and Redis on this machine.

Each fixture skips the test with a message naming the service when it is unreachable (CI has them all).
Override the addresses with PIPEDECK_TEST_POSTGRES_URL, PIPEDECK_TEST_MARIADB_URL, PIPEDECK_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("PIPEDECK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("PIPEDECK_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("PIPEDECK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> str | None:
    """None when a TCP connection to the URL's host and port opens, else why not."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server URL (database `test`); skips when PostgreSQL is unreachable."""
    import psycopg

    why = _reachable(POSTGRES_URL, 5432)
    if why is None:
        try:
            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
        except psycopg.Error as exc:
            why = str(exc).strip().splitlines()[0]
    if why:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {why}")
    return POSTGRES_URL


@pytest.fixture
def postgres_dsn(postgres_url: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, dropped after the test."""
    import psycopg

    schema = f"pipedeck_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The MariaDB server URL (user root, database `test`); skips when MariaDB is unreachable."""
    import pymysql

    why = _reachable(MARIADB_URL, 3306)
    if why is None:
        try:
            pymysql.connect(**_mysql_params(MARIADB_URL), connect_timeout=3).close()
        except pymysql.Error as exc:
            why = str(exc)
    if why:
        pytest.skip(f"MariaDB unreachable at {MARIADB_URL}: {why}")
    return MARIADB_URL


def _mysql_params(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }


@pytest.fixture
def mariadb_dsn(mariadb_url: str) -> Iterator[str]:
    """A DSN on a fresh MariaDB database, dropped after the test."""
    import pymysql

    name = f"pipedeck_test_{uuid.uuid4().hex[:10]}"
    params = _mysql_params(mariadb_url)
    conn = pymysql.connect(**params, autocommit=True)
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}`")
    finally:
        conn.close()
    parts = urlsplit(mariadb_url)
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        conn = pymysql.connect(**params, autocommit=True)
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis URL; skips when Redis is unreachable."""
    why = _reachable(REDIS_URL, 6379)
    if why:
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {why}")
    return REDIS_URL
