"""End to end, one per pipeline type: join two SQLite tables, drop columns, aggregate, load, run SQL at load.

The project files go through the real loader, the real registry and the built-in plugins; the results
are read back from the SQLite files. ETL has no transform_at_load phase (pipeline-flow's rules), so its
SQL-at-load part is absent; ELT has no transform phase, so it drops and aggregates in SQL at load.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.events import MemorySink, Status, StepFinished
from orchestrator.plugins.registry import registry
from orchestrator.scheduler import run_project
from orchestrator.yamlio import load_project

SECRETS = """\
secrets:
  SHOP: {plugin: env_secret, args: {name: SHOP_DSN}}
  WAREHOUSE: {plugin: env_secret, args: {name: WAREHOUSE_DSN}}
---
"""

EXTRACT = """\
      extract:
        steps:
          - {id: orders, plugin: sql_extract, args: {dsn: "${{ secrets.SHOP }}", table: orders}}
          - {id: customers, plugin: sql_extract, args: {dsn: "${{ secrets.SHOP }}", table: customers}}
        merge: {id: join, plugin: join_merge, args: {on: customer_id}}
"""

TRANSFORM = """\
      transform:
        steps:
          - {id: drop, plugin: drop_columns, args: {columns: [note, email]}}
          - id: per_country
            plugin: aggregate
            args: {by: [country], aggs: {total: sum(amount), orders: count(*)}}
"""

ETL = f"""{SECRETS}pipelines:
  sales:
    type: ETL
    phases:
{EXTRACT}{TRANSFORM}      load:
        steps:
          - id: save
            plugin: sql_load
            args: {{dsn: "${{{{ secrets.WAREHOUSE }}}}", table: sales_by_country, mode: replace}}
"""

ELT = f"""{SECRETS}pipelines:
  sales:
    type: ELT
    phases:
{EXTRACT}      load:
        steps:
          - {{id: save_raw, plugin: sql_load, args: {{dsn: "${{{{ secrets.WAREHOUSE }}}}", table: joined}}}}
      transform_at_load:
        steps:
          - id: drop
            plugin: sql_execute
            args:
              dsn: "${{{{ secrets.WAREHOUSE }}}}"
              sql: ALTER TABLE joined DROP COLUMN note; ALTER TABLE joined DROP COLUMN email
          - id: per_country
            plugin: sql_execute
            args:
              dsn: "${{{{ secrets.WAREHOUSE }}}}"
              sql: >
                CREATE TABLE sales_by_country AS
                SELECT country, SUM(amount) AS total, COUNT(*) AS orders FROM joined GROUP BY country
"""

ETLT = f"""{SECRETS}pipelines:
  sales:
    type: ETLT
    phases:
{EXTRACT}{TRANSFORM}      load:
        steps:
          - id: save
            plugin: sql_load
            args: {{dsn: "${{{{ secrets.WAREHOUSE }}}}", table: sales_by_country, mode: replace}}
      transform_at_load:
        steps:
          - id: rank
            plugin: sql_execute
            args:
              dsn: "${{{{ secrets.WAREHOUSE }}}}"
              sql: >
                CREATE TABLE top_country AS
                SELECT country FROM sales_by_country ORDER BY total DESC LIMIT 1
"""

# France: Ann 50 + 25.5, Cy 10; Germany: Bob 100. Order 14's customer does not exist: the inner join drops it.
EXPECTED = [("DE", 100.0, 1), ("FR", 85.5, 3)]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.executescript(
            """
            CREATE TABLE customers (customer_id INTEGER, name TEXT, country TEXT, email TEXT);
            INSERT INTO customers VALUES (1, 'Ann', 'FR', 'ann@x.org'), (2, 'Bob', 'DE', 'bob@x.org'),
                                         (3, 'Cy', 'FR', 'cy@x.org'), (4, 'Dee', 'ES', 'dee@x.org');
            CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, amount REAL, note TEXT);
            INSERT INTO orders VALUES (10, 1, 50.0, 'gift'), (11, 1, 25.5, NULL), (12, 2, 100.0, NULL),
                                      (13, 3, 10.0, 'rush'), (14, 5, 99.0, NULL);
            """
        )
    db.close()
    return tmp_path


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def run_file(text: str, data_root: Path) -> MemorySink:
    spec = load_project(text, registry=registry)
    sink = MemorySink()
    env = {"SHOP_DSN": "sqlite:///shop.db", "WAREHOUSE_DSN": "sqlite:///warehouse.db"}
    result = await run_project(spec, sinks=[sink], env=env, data_root=data_root)
    assert result.status == Status.SUCCEEDED, result.pipelines["sales"].error
    return sink


def totals(data_root: Path) -> list[tuple[object, ...]]:
    sql = "SELECT country, total, orders FROM sales_by_country ORDER BY country"
    return query(data_root / "warehouse.db", sql)


async def test_etl_joins_drops_aggregates_and_loads(data_root: Path) -> None:
    sink = await run_file(ETL, data_root)
    assert totals(data_root) == EXPECTED
    columns = [row[1] for row in query(data_root / "warehouse.db", "PRAGMA table_info(sales_by_country)")]
    assert sorted(columns) == ["country", "orders", "total"]
    rows = {e.step: (e.rows_in, e.rows_out) for e in sink.of(StepFinished)}
    assert rows["join"] == (9, 4) and rows["per_country"] == (4, 2) and rows["save"] == (2, None)


async def test_elt_loads_the_join_then_drops_and_aggregates_in_the_destination(data_root: Path) -> None:
    await run_file(ELT, data_root)
    assert totals(data_root) == EXPECTED
    columns = [row[1] for row in query(data_root / "warehouse.db", "PRAGMA table_info(joined)")]
    assert sorted(columns) == ["amount", "country", "customer_id", "name", "order_id"]


async def test_etlt_transforms_loads_and_runs_sql_at_load(data_root: Path) -> None:
    await run_file(ETLT, data_root)
    assert totals(data_root) == EXPECTED
    assert query(data_root / "warehouse.db", "SELECT country FROM top_country") == [("DE",)]
