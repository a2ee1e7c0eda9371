"""The demo project: a team, a user and three pipelines (ETL, ELT, ETLT) over the files in examples/data/."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from pathlib import Path
from typing import Any

DEMO_TEAM = ("Demo team", "demo")
DEMO_PROJECT = ("Orders demo", "orders-demo")
DEMO_VARIABLES = {"ORDERS_FILE": "orders.csv"}
#: the demo project's run parameters (the Run form asks for them; designer/triggers)
DEMO_PARAMETERS: list[dict[str, Any]] = [
    {"name": "day", "type": "date", "description": "The business day this run is for", "required": True},
    {"name": "orders_min", "type": "number", "default": 10, "description": "Smallest order amount kept"},
]
WAREHOUSE = "sqlite:///out/warehouse.sqlite3"
SOURCE_DB = "sqlite:///demo.sqlite3"


def _step(step_id: str, plugin: str, **args: Any) -> dict[str, Any]:
    return {"id": step_id, "plugin": plugin, "args": args}


DEMO_PIPELINES: dict[str, dict[str, Any]] = {
    "orders_etl": {
        "type": "ETL",
        "description": "Orders joined with customers, big orders only, revenue by country and segment",
        "phases": {
            "extract": {
                "steps": [
                    _step("read_orders", "csv_extract", path="${{ variables.ORDERS_FILE }}"),
                    _step("read_customers", "sql_extract", dsn=SOURCE_DB, table="customers"),
                ],
                "merge": _step("join", "join_merge", on="customer_id", how="inner"),
            },
            "transform": {
                "steps": [
                    _step("big_orders", "filter_rows", expr="amount > 10"),
                    _step(
                        "by_country",
                        "aggregate",
                        by=["country", "segment"],
                        aggs={"revenue": "sum(amount)", "orders": "count(order_id)"},
                    ),
                    _step("sorted", "sort_rows", by=["country", "segment"]),
                ]
            },
            "load": {"steps": [_step("write_csv", "csv_load", path="out/revenue_by_country.csv")]},
        },
    },
    "orders_elt": {
        "type": "ELT",
        "description": "Raw orders into the warehouse, then a summary table built inside it",
        "phases": {
            "extract": {"steps": [_step("read_orders", "csv_extract", path="${{ variables.ORDERS_FILE }}")]},
            "load": {
                "steps": [_step("raw_orders", "sql_load", dsn=WAREHOUSE, table="orders_raw", mode="replace")]
            },
            "transform_at_load": {
                "steps": [
                    _step(
                        "monthly",
                        "sql_execute",
                        dsn=WAREHOUSE,
                        sql=(
                            "DROP TABLE IF EXISTS orders_monthly;\n"
                            "CREATE TABLE orders_monthly AS SELECT substr(ordered_at, 1, 7) AS month,"
                            " count(*) AS orders, sum(amount) AS revenue FROM orders_raw GROUP BY 1"
                        ),
                    )
                ]
            },
        },
    },
    "customers_etlt": {
        "type": "ETLT",
        "description": "Customers cleaned in Python, loaded, then joined with raw orders in the warehouse",
        "needs": ["orders_elt"],
        "phases": {
            "extract": {"steps": [_step("read_customers", "sql_extract", dsn=SOURCE_DB, table="customers")]},
            "transform": {
                "steps": [
                    _step("keep", "select_columns", columns=["customer_id", "name", "segment", "country"]),
                    _step("dedupe", "deduplicate", subset=["customer_id"]),
                ]
            },
            "load": {
                "steps": [_step("customers", "sql_load", dsn=WAREHOUSE, table="customers", mode="replace")]
            },
            "transform_at_load": {
                "steps": [
                    _step(
                        "segment_revenue",
                        "sql_execute",
                        dsn=WAREHOUSE,
                        sql=(
                            "DROP TABLE IF EXISTS segment_revenue;\n"
                            "CREATE TABLE segment_revenue AS SELECT c.segment, count(*) AS orders,"
                            " sum(o.amount) AS revenue FROM orders_raw o JOIN customers c"
                            " ON c.customer_id = o.customer_id GROUP BY c.segment"
                        ),
                    )
                ]
            },
        },
    },
}


BUNDLED = Path(__file__).resolve().parent.parent / "examples" / "data"
DEMO_FILES = ("orders.csv", "customers.csv")


def build_source_db(data_root: Path) -> Path:
    """Copy the bundled demo files into ``data_root`` (the demo team's) and (re)build ``demo.sqlite3``
    (table ``customers``) there."""
    data_root.mkdir(parents=True, exist_ok=True)
    (data_root / "out").mkdir(exist_ok=True)
    for name in DEMO_FILES:
        if not (data_root / name).exists():
            shutil.copyfile(BUNDLED / name, data_root / name)
    target = data_root / "demo.sqlite3"
    with (data_root / "customers.csv").open(newline="") as f:
        rows = [(int(r["customer_id"]), r["name"], r["segment"], r["country"]) for r in csv.DictReader(f)]
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as conn:
        conn.execute(
            "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT, segment TEXT, country TEXT)"
        )
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", rows)
    conn.close()
    tmp.replace(target)
    return target
