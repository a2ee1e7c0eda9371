"""SQL guards, through the real plugins: Polars SQL cannot read files, SQLite cannot ATTACH or write pragmas,
and sql_execute runs statements one by one inside its own transaction.

The Polars corpus reads a canary planted in a temporary folder (as CSV, Parquet, JSON, NDJSON, IPC and a raw
key file); its value must never come back, in a result or in an error.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orchestrator.plugins import PluginError, StepContext, sql as sql_plugins
from orchestrator.plugins.frames import Aggregate, FilterRows, SqlTransform, WithColumns
from orchestrator.plugins.generate import GenerateRows
from orchestrator.plugins.sql import SqlExecute, SqlExtract, SqlLoad, execute_script
from orchestrator.plugins.sqldb import connect, parse_dsn
from orchestrator.plugins.sqlguard import (
    polars_sql_problem,
    split_statements,
    sql_script_problem,
    sqlite_user_statements,
)
from tests.integration import conftest as integration
from tests.orchestrator.plugins.conftest import make_ctx

CANARY = "canary-sqlguard-5Jx81q-never-shown"
ORDERS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [5.5, 20.0, 12.5, 40.0],
        "country": ["FR", "DE", "FR", "ES"],
        "day": pl.Series(["2024-01-05", "2024-02-10", "2024-02-11", "2024-03-01"]).str.to_date(),
    }
)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside any data root holding the canary in every format Polars SQL can read."""
    folder = tmp_path_factory.mktemp("app")
    canary = pl.DataFrame({"secret": [CANARY]})
    canary.write_csv(folder / "key.csv")
    canary.write_parquet(folder / "key.parquet")
    canary.write_ndjson(folder / "key.ndjson")
    canary.write_ipc(folder / "key.ipc")
    (folder / "key.json").write_text(f'{{"secret": "{CANARY}"}}\n')
    (folder / ".dev-fernet-key").write_text(f"{CANARY}\n")
    return folder


@pytest.fixture
def ctx(tmp_path: Path) -> StepContext:
    root = tmp_path / "data"
    root.mkdir()
    return make_ctx(root)


def _fill(template: str, folder: Path) -> str:
    files = {ext: str(folder / f"key.{ext}") for ext in ("csv", "parquet", "json", "ndjson", "ipc")}
    escaped = "\\x2f" + files["csv"][1:]  # the first "/" as an E'' escape
    return template.format(dir=folder, key=folder / ".dev-fernet-key", escaped=escaped, **files)


# -- Polars SQL: the corpus ---------------------------------------------------------------------------------

QUERY_ATTACKS = [
    # every reader, plainly
    "SELECT * FROM read_csv('{csv}')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM read_json('{json}')",
    "SELECT * FROM read_ndjson('{ndjson}')",
    "SELECT * FROM read_ipc('{ipc}')",
    "SELECT * FROM read_csv('{key}', has_header => false)",
    "SELECT * FROM read_csv(['{csv}'])",
    "SELECT * FROM read_csv('{dir}/*.csv')",
    "SELECT * FROM scan_csv('{csv}')",
    "SELECT * FROM scan_parquet('{parquet}')",
    "SELECT * FROM read_delta('{dir}')",
    "SELECT * FROM read_excel('{dir}/key.xlsx')",
    # casing, quoting and what sits between the name and "("
    "select * from READ_CSV('{csv}')",
    "SELECT * FROM Read_Parquet('{parquet}')",
    "SELECT * FROM \"read_csv\"('{csv}')",
    "SELECT * FROM \"READ_CSV\"('{csv}')",
    "SELECT * FROM `read_csv`('{csv}')",
    "SELECT * FROM read_csv /* hidden */ ('{csv}')",
    "SELECT * FROM read_csv -- hidden\n('{csv}')",
    "SELECT * FROM read_csv\n\t('{csv}')",
    "SELECT * FROM read_csv\u00a0('{csv}')",
    "SELECT * FROM x.read_csv('{csv}')",
    # in joins
    "SELECT * FROM data, read_csv('{csv}') AS k",
    "SELECT * FROM data CROSS JOIN read_csv('{csv}') AS k",
    "SELECT * FROM data JOIN read_parquet('{parquet}') AS k ON true",
    "SELECT * FROM data LEFT JOIN read_ndjson('{ndjson}') k ON k.secret = data.country",
    "SELECT * FROM data NATURAL JOIN read_ipc('{ipc}')",
    "SELECT * FROM data, LATERAL read_csv('{csv}')",
    "SELECT * FROM generate_series(1, 1), read_csv('{csv}')",
    "SELECT * FROM (data JOIN read_csv('{csv}') AS k ON true)",
    # in subqueries and CTEs
    "SELECT * FROM (SELECT * FROM read_csv('{csv}')) AS k",
    "SELECT * FROM (read_csv('{csv}'))",
    "WITH k AS (SELECT * FROM read_csv('{csv}')) SELECT * FROM k",
    "WITH a AS (SELECT 1 AS x), k AS (SELECT * FROM read_ipc('{ipc}')) SELECT * FROM k",
    "WITH k(s) AS (SELECT * FROM read_csv('{csv}')) SELECT s FROM k",
    "WITH RECURSIVE k AS (SELECT * FROM read_csv('{csv}')) SELECT * FROM k",
    "SELECT * FROM data WHERE country IN (SELECT secret FROM read_csv('{csv}'))",
    "SELECT * FROM data WHERE country = ANY (SELECT secret FROM read_csv('{csv}'))",
    "SELECT (SELECT max(secret) FROM read_csv('{csv}')) AS leak FROM data",
    "SELECT * FROM data WHERE EXISTS (SELECT 1 FROM read_csv('{csv}'))",
    "SELECT * FROM data ORDER BY (SELECT max(secret) FROM read_csv('{csv}'))",
    "SELECT country FROM data UNION ALL SELECT secret FROM read_csv('{csv}')",
    "SELECT * FROM data UNION BY NAME SELECT * FROM read_ndjson('{ndjson}')",
    "VALUES ((SELECT max(secret) FROM read_csv('{csv}')))",
    "(SELECT * FROM read_csv('{csv}'))",
    "FROM read_csv('{csv}')",
    # in expressions, nested in calls; the failing cast that printed the key
    "SELECT upper(secret) FROM read_csv('{csv}')",
    "SELECT CAST(secret AS INT) FROM read_csv('{key}', has_header => false)",
    "SELECT upper(read_csv('{csv}')) FROM data",
    "SELECT coalesce(country, (SELECT max(secret) FROM read_parquet('{parquet}'))) FROM data",
    # a path as a table, other statements, several statements
    "SELECT * FROM '{csv}'",
    'SELECT * FROM "{csv}"',
    "SELECT * FROM TABLE(read_csv('{csv}'))",
    "SELECT * FROM data; SELECT * FROM read_csv('{csv}')",
    "CREATE TABLE k AS SELECT * FROM read_csv('{csv}')",
    "CREATE TEMP TABLE k AS SELECT * FROM read_parquet('{parquet}')",
    "EXPLAIN SELECT * FROM read_csv('{csv}')",
    "WITH k AS (SELECT 1) DELETE FROM data",
    "SHOW TABLES",
    # strings and comments another tokenizer would read differently
    "SELECT * FROM read_csv(E'{escaped}')",
    "SELECT E'\\'' AS a, * FROM read_csv('{csv}') --'",
    "SELECT * FROM read_csv($${csv}$$)",
    "SELECT * FROM data /* /* */ , read_csv('{csv}') --",
]


def test_the_corpus_is_big_and_its_readers_work_without_the_guard(secrets_dir: Path) -> None:
    assert len(QUERY_ATTACKS) >= 40
    # the same queries straight into Polars read the canary: the guard is what stops them
    for template in QUERY_ATTACKS[:2] + QUERY_ATTACKS[3:6]:
        query = _fill(template, secrets_dir)
        read = pl.SQLContext(frames={"data": ORDERS}, register_globals=False).execute(query, eager=True)
        assert CANARY in str(read.rows()), query


@pytest.mark.parametrize("template", QUERY_ATTACKS)
@pytest.mark.parametrize("lazy", [False, True])
def test_sql_transform_never_reads_a_file(
    template: str, lazy: bool, ctx: StepContext, secrets_dir: Path
) -> None:
    query = _fill(template, secrets_dir)
    data = ORDERS.lazy() if lazy else ORDERS
    with pytest.raises(PluginError) as err:
        result = SqlTransform({"query": query}).transform(ctx, data)
        pytest.fail(f"ran: {result.lazy().collect().rows()}")
    assert str(err.value).startswith("query: ")
    assert CANARY not in str(err.value)


EXPRESSION_ATTACKS = [
    "country IN (SELECT secret FROM read_csv('{csv}'))",
    "(SELECT count(*) FROM read_csv('{csv}')) > 0",
    "EXISTS (SELECT 1 FROM read_parquet('{parquet}'))",
    "read_csv('{csv}')",
    "upper(read_csv('{csv}'))",
    "amount > 0 OR country = ANY (SELECT secret FROM read_ndjson('{ndjson}'))",
    "\"read_csv\"('{csv}')",
    "scan_csv('{csv}') IS NULL",
    "amount > 10; SELECT * FROM read_csv('{csv}')",
    "secret FROM read_csv('{csv}')",
    "read_csv /* */ ('{csv}')",
    "coalesce(country, (SELECT max(secret) FROM read_ipc('{ipc}')))",
]
EXPRESSION_PLUGINS = {
    "filter_rows": lambda e: FilterRows({"expr": e}),
    "with_columns": lambda e: WithColumns({"columns": {"x": e}}),
    "aggregate": lambda e: Aggregate({"by": ["country"], "aggs": {"x": e}}),
}


@pytest.mark.parametrize("template", EXPRESSION_ATTACKS)
@pytest.mark.parametrize("plugin", sorted(EXPRESSION_PLUGINS))
def test_expressions_never_read_a_file(
    template: str, plugin: str, ctx: StepContext, secrets_dir: Path
) -> None:
    expression = _fill(template, secrets_dir)
    with pytest.raises(PluginError) as err:
        EXPRESSION_PLUGINS[plugin](expression).transform(ctx, ORDERS)
    assert CANARY not in str(err.value)


@pytest.mark.parametrize("template", EXPRESSION_ATTACKS)
async def test_generate_rows_never_reads_a_file(template: str, ctx: StepContext, secrets_dir: Path) -> None:
    columns = {"id": "row_number", "x": _fill(template, secrets_dir)}
    with pytest.raises(PluginError) as err:
        await GenerateRows({"rows": 2, "columns": columns}).extract(ctx)
    assert str(err.value).startswith("column 'x'")
    assert CANARY not in str(err.value)


async def test_random_functions_only_in_generate_rows(ctx: StepContext, secrets_dir: Path) -> None:
    frame = await GenerateRows(
        {
            "rows": 3,
            "columns": {"r": "random()", "n": "random_int(1, 2)", "c": "random_choice('a', 'b')"},
            "seed": 1,
        }
    ).extract(ctx)
    assert frame.height == 3
    with pytest.raises(PluginError, match=r"^expr 'random\(\) > 0.5': function random\(\) is not available"):
        FilterRows({"expr": "random() > 0.5"}).transform(ctx, ORDERS)
    leak = f"random_choice('a', (SELECT max(secret) FROM read_csv('{secrets_dir}/key.csv')))"
    with pytest.raises(PluginError, match="^column 'c': SELECT is not allowed in an expression"):
        await GenerateRows({"rows": 1, "columns": {"c": leak}}).extract(ctx)


def test_messages_name_the_function_or_table_and_the_fix() -> None:
    problem = polars_sql_problem("SELECT * FROM read_parquet('/x.parquet')", expression=False)
    assert problem is not None
    assert problem.startswith("read_parquet() reads files")
    assert "parquet_extract" in problem and "may only read the table `data`" in problem
    problem = polars_sql_problem("SELECT * FROM data JOIN customers USING (id)", expression=False)
    assert problem is not None and problem.startswith("table 'customers' is not available")
    assert (
        polars_sql_problem("SELECT * FROM a JOIN b USING (id)", expression=False, tables=("a", "b")) is None
    )
    assert polars_sql_problem("uper(country)", expression=True) == (
        "function uper() is not available; did you mean upper? "
        "use Polars SQL functions such as upper, round, coalesce, concat, sum, count"
    )
    problem = polars_sql_problem("amount > (SELECT 1)", expression=True)
    assert problem is not None and problem.startswith("SELECT is not allowed in an expression")


def test_fields_tell_validation_which_sql_they_hold() -> None:
    from orchestrator.plugins.registry import registry

    def prop(plugin: str, field: str) -> dict[str, Any]:
        return dict(registry.describe(plugin)["args_schema"]["properties"][field])

    assert prop("sql_transform", "query")["dialect"] == "polars"
    assert prop("sql_execute", "sql")["dialect"] == "destination" and prop("sql_execute", "sql")["script"]
    functions = prop("generate_rows", "columns")["functions"]
    assert (
        polars_sql_problem("random_int(1, 6) + random()", expression=True, extra_functions=functions) is None
    )
    functions = prop("aggregate", "aggs")["functions"]
    assert polars_sql_problem("n_unique(id)", expression=True, extra_functions=functions) is None


# -- Polars SQL: what must keep working ---------------------------------------------------------------------

LEGITIMATE_QUERIES = [
    "SELECT country, sum(amount) AS total FROM data GROUP BY country ORDER BY total DESC NULLS LAST",
    "SELECT * FROM data WHERE amount > 10 AND country IN ('FR', 'DE')",
    "WITH big AS (SELECT * FROM data WHERE amount > 10), fr AS (SELECT id FROM data WHERE country = 'FR') "
    "SELECT big.id FROM big JOIN fr ON big.id = fr.id",
    "WITH t(i, a) AS (SELECT id, amount FROM data) SELECT i FROM t WHERE a > 10",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    "SELECT d1.id, d2.id AS other FROM data AS d1 JOIN data AS d2 "
    "ON d1.country = d2.country AND d1.id < d2.id",
    "SELECT d.* FROM data d(i, a, c, dd) WHERE d.amount > 10",
    "SELECT * FROM (data AS d1 JOIN data AS d2 USING (id))",
    "SELECT * FROM data SEMI JOIN data AS d2 USING (id)",
    "SELECT id, row_number() OVER (PARTITION BY country ORDER BY amount DESC) AS rn, "
    "lag(amount) OVER (ORDER BY id) AS prev, sum(amount) OVER (PARTITION BY country) AS by_country FROM data",
    "SELECT country, amount FROM data QUALIFY amount = max(amount) OVER (PARTITION BY country)",
    "SELECT id, CASE WHEN amount > 10 THEN 'big' WHEN amount > 5 THEN 'mid' ELSE 'small' END AS size "
    "FROM data",
    "SELECT CAST(amount AS DECIMAL(10, 2)) AS d, amount::VARCHAR AS v, TRY_CAST(country AS INT) AS i "
    "FROM data",
    "SELECT upper(country) || '-' || CAST(id AS VARCHAR) AS label, lower(country) AS l, "
    "length(country) AS n, substr(country, 1, 1) AS f, replace(country, 'F', 'f') AS r, "
    "concat_ws('/', country, id) AS c FROM data",
    "SELECT substring(country FROM 1 FOR 1) AS s, trim(BOTH 'F' FROM country) AS t, "
    "position('R' IN country) AS p, starts_with(country, 'F') AS sw FROM data",
    "SELECT extract(year FROM day) AS y, date_part('month', day) AS m, strftime(day, '%Y-%m') AS ym, "
    "day + INTERVAL '1 day' AS next_day FROM data WHERE day >= DATE '2024-02-01'",
    "SELECT country, count(*) AS n, count(DISTINCT id) AS ids, avg(amount) AS mean, min(amount) AS lo, "
    "max(amount) AS hi, median(amount) AS med, stddev(amount) AS sd FROM data GROUP BY country "
    "HAVING count(*) > 0",
    "SELECT coalesce(nullif(country, 'FR'), 'fr') AS c, greatest(amount, 10) AS g, "
    "round(amount / 3, 2) AS r FROM data",
    "SELECT * FROM data WHERE id IN (SELECT id FROM data WHERE amount > 10)",
    "SELECT id, (SELECT max(amount) FROM data) AS top FROM data",
    "SELECT * FROM data WHERE EXISTS (SELECT 1 FROM data AS d2 WHERE d2.amount > data.amount)",
    "SELECT country FROM data UNION SELECT 'IT'",
    "SELECT * FROM data JOIN unnest([1, 2]) AS u(v) ON data.id = u.v",
    "SELECT * FROM generate_series(1, 3) AS g(n)",
    "SELECT * EXCLUDE (day) FROM data",
    "SELECT 'read_csv(''/etc/passwd'')' AS not_a_call, \"country\" FROM \"data\" -- read_csv('x')",
    "FROM data SELECT id WHERE amount > 10",
    "SELECT * FROM data;",
    "SELECT a.* FROM data AS a LIMIT 2 OFFSET 1",
    "SELECT country, amount FROM data WHERE country IS DISTINCT FROM 'FR'",
]


@pytest.mark.parametrize("query", LEGITIMATE_QUERIES)
def test_legitimate_queries_still_run(query: str, ctx: StepContext) -> None:
    assert polars_sql_problem(query, expression=False) is None
    result = SqlTransform({"query": query}).transform(ctx, ORDERS)
    assert isinstance(result, pl.DataFrame)


def test_legitimate_query_results(ctx: StepContext) -> None:
    totals = SqlTransform({"query": LEGITIMATE_QUERIES[0]}).transform(ctx, ORDERS)
    assert totals.rows() == [("ES", 40.0), ("DE", 20.0), ("FR", 18.0)]
    lazy = SqlTransform({"query": LEGITIMATE_QUERIES[2]}).transform(ctx, ORDERS.lazy())
    assert isinstance(lazy, pl.LazyFrame) and lazy.collect()["id"].to_list() == [3]


LEGITIMATE_EXPRESSIONS = [
    "amount > 10 AND country IN ('FR', 'DE')",
    "extract(year FROM day) = 2024",
    "CASE WHEN amount > 10 THEN 'big' ELSE 'small' END",
    "CAST(amount AS DECIMAL(10, 2))",
    "upper(country) || '-' || CAST(id AS VARCHAR)",
    "coalesce(amount, 0) * 0.92",
    "row_number() OVER (ORDER BY amount)",
    "sum(amount) OVER (PARTITION BY country)",
    "strftime(day, '%Y-%m')",
    "country IS DISTINCT FROM 'FR'",
    "substring(country FROM 1 FOR 1)",
]


@pytest.mark.parametrize("expression", LEGITIMATE_EXPRESSIONS)
def test_legitimate_expressions_still_run(expression: str, ctx: StepContext) -> None:
    out = WithColumns({"columns": {"x": expression}}).transform(ctx, ORDERS)
    assert isinstance(out, pl.DataFrame) and "x" in out.columns
    assert (
        FilterRows({"expr": "amount > 10 AND country IS DISTINCT FROM 'ES'"}).transform(ctx, ORDERS).height
        == 2
    )
    total = Aggregate({"aggs": {"t": "sum(amount * 2)", "n": "count(DISTINCT country)"}}).transform(
        ctx, ORDERS
    )
    assert total.to_dicts() == [{"t": 156.0, "n": 3}]


# -- SQLite: ATTACH, VACUUM INTO, pragmas, transactions -----------------------------------------------------


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    """An "app" database outside the data root: one team, one owner."""
    path = tmp_path / "app" / "db.sqlite3"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE designer_membership (team_id INTEGER, user_id INTEGER, role TEXT)")
        conn.execute("INSERT INTO designer_membership VALUES (1, 1, 'owner')")
    return path


def _members(app_db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(app_db) as conn:
        return conn.execute("SELECT * FROM designer_membership ORDER BY user_id").fetchall()


async def _scratch(ctx: StepContext) -> str:
    dsn = "sqlite:///scratch.db"
    await SqlLoad({"dsn": dsn, "table": "scratch"}).load(ctx, pl.DataFrame({"n": [1, 2]}))
    return dsn


def _attach_script(app_db: Path, *, transaction: bool = True) -> str:
    body = (
        f"ATTACH DATABASE '{app_db}' AS app; "
        "INSERT INTO app.designer_membership (team_id, user_id, role) VALUES (1, 666, 'owner'); "
        "DETACH DATABASE app;"
    )
    return f"COMMIT; {body} BEGIN;" if transaction else body


async def test_the_attach_reproduction_fails_and_changes_nothing(ctx: StepContext, app_db: Path) -> None:
    dsn = await _scratch(ctx)
    with pytest.raises(PluginError) as err:
        SqlExecute({"dsn": dsn, "sql": _attach_script(app_db)}).execute(ctx)
    assert str(err.value).startswith(
        "sql: statement 1 of 5 `COMMIT` is refused: transaction control is not allowed"
    )
    with pytest.raises(
        PluginError, match="statement 1 of 3 `ATTACH DATABASE .*` is refused: ATTACH and DETACH"
    ):
        SqlExecute({"dsn": dsn, "sql": _attach_script(app_db, transaction=False)}).execute(ctx)
    assert _members(app_db) == [(1, 1, "owner")]


@pytest.mark.parametrize("transaction", [True, False])
async def test_the_authorizer_stops_attach_when_the_text_check_is_bypassed(
    ctx: StepContext, app_db: Path, monkeypatch: pytest.MonkeyPatch, transaction: bool
) -> None:
    dsn = await _scratch(ctx)
    monkeypatch.setattr(sql_plugins, "check_sql_script", split_statements)  # as if the text check missed it
    with pytest.raises(PluginError) as err:
        SqlExecute({"dsn": dsn, "sql": _attach_script(app_db, transaction=transaction)}).execute(ctx)
    expected = "COMMIT is not allowed" if transaction else "ATTACH and VACUUM are not allowed"
    assert "nothing was changed: statement 1 of" in str(err.value) and expected in str(err.value)
    assert _members(app_db) == [(1, 1, "owner")]
    with pytest.raises(PluginError, match="query failed on sqlite:///scratch.db: not authorized"):
        await SqlExtract({"dsn": dsn, "query": f"ATTACH DATABASE '{app_db}' AS app"}).extract(ctx)
    conn = connect(parse_dsn(dsn, ctx.data_root))
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        conn.execute(f"ATTACH DATABASE '{app_db}' AS app")
    conn.close()


async def test_vacuum_into_is_refused(ctx: StepContext) -> None:
    dsn = await _scratch(ctx)
    copy = ctx.data_root / "copy.db"
    with pytest.raises(PluginError, match="`VACUUM INTO .*` is refused: VACUUM is not allowed"):
        SqlExecute({"dsn": dsn, "sql": f"VACUUM INTO '{copy}'"}).execute(ctx)
    with pytest.raises(PluginError, match="query failed on sqlite:///scratch.db: authorization denied"):
        await SqlExtract({"dsn": dsn, "query": f"VACUUM INTO '{copy}'"}).extract(ctx)
    assert not copy.exists()


@pytest.mark.parametrize(
    "pragma",
    [
        "PRAGMA journal_mode = WAL",
        "PRAGMA user_version = 7",
        "PRAGMA writable_schema = ON",
        "PRAGMA foreign_keys = OFF",
    ],
)
async def test_pragma_writes_are_refused(
    pragma: str, ctx: StepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = await _scratch(ctx)
    with pytest.raises(PluginError, match=r"`PRAGMA .*` is refused: PRAGMA \w+ = \.\.\. is not allowed"):
        SqlExecute({"dsn": dsn, "sql": pragma}).execute(ctx)
    monkeypatch.setattr(sql_plugins, "check_sql_script", split_statements)
    with pytest.raises(
        PluginError, match=r"nothing was changed: statement 1 of 1 .*: PRAGMA \w+ = \S+ is not allowed"
    ):
        SqlExecute({"dsn": dsn, "sql": pragma}).execute(ctx)
    with sqlite3.connect(ctx.data_root / "scratch.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


async def test_read_only_pragmas_still_work(ctx: StepContext) -> None:
    dsn = await _scratch(ctx)
    frame = await SqlExtract({"dsn": dsn, "query": "SELECT name FROM pragma_table_info('scratch')"}).extract(
        ctx
    )
    assert frame["name"].to_list() == ["n"]
    SqlExecute({"dsn": dsn, "sql": "PRAGMA table_info(scratch); PRAGMA main.index_list(scratch)"}).execute(
        ctx
    )
    with pytest.raises(PluginError, match="query failed on sqlite:///scratch.db: not authorized"):
        await SqlExtract({"dsn": dsn, "query": "SELECT * FROM pragma_database_list"}).extract(ctx)


async def test_transaction_statements_are_refused_while_user_sql_runs(ctx: StepContext) -> None:
    dsn = await _scratch(ctx)
    conn = connect(parse_dsn(dsn, ctx.data_root))
    conn.execute("BEGIN")
    conn.execute("COMMIT")  # the plugin's own: allowed, and now in the statement cache
    conn.execute("BEGIN")
    with sqlite_user_statements(conn) as authorizer:
        for statement in ("COMMIT", "ROLLBACK", "SAVEPOINT s", "BEGIN"):
            with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
                conn.execute(statement)
        assert authorizer.refused is not None and "not allowed" in authorizer.refused
        conn.execute("INSERT INTO scratch VALUES (3)")
    conn.commit()  # the plugin's COMMIT works again
    conn.close()
    with sqlite3.connect(ctx.data_root / "scratch.db") as check:
        assert check.execute("SELECT count(*) FROM scratch").fetchone() == (3,)


SCRIPT_REFUSALS = [
    ("BEGIN; UPDATE t SET a = 1; COMMIT;", 1, None),
    ("UPDATE t SET a = 1; commit", 2, None),
    ("START TRANSACTION", 1, None),
    ("END", 1, None),
    ("ROLLBACK", 1, None),
    ("ROLLBACK TO SAVEPOINT s", 1, None),
    ("ABORT", 1, None),
    ("SAVEPOINT s", 1, None),
    ("RELEASE SAVEPOINT s", 1, None),
    ("PREPARE TRANSACTION 'x'", 1, "postgresql"),
    ("COMMIT PREPARED 'x'", 1, "postgresql"),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 1, "postgresql"),
    ("SET autocommit = 1", 1, "mysql"),
    ("SET @@session.autocommit = 1", 1, "mysql"),
    ("XA START 'x'", 1, "mysql"),
    ("LOCK TABLES t WRITE", 1, "mysql"),
    ("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", 1, "mysql"),
    ("DELIMITER //", 1, "mysql"),
    ("ATTACH DATABASE 'x.db' AS x", 1, "sqlite"),
    ("DETACH DATABASE x", 1, "sqlite"),
    ("VACUUM", 1, "sqlite"),
]


@pytest.mark.parametrize(("script", "number", "dialect"), SCRIPT_REFUSALS)
def test_transaction_control_and_file_access_are_refused(
    script: str, number: int, dialect: str | None
) -> None:
    for each in [dialect] if dialect else ["postgresql", "mysql", "sqlite", None]:
        problem = sql_script_problem(script, each)
        assert problem is not None and problem.startswith(f"statement {number} of "), (each, problem)
        assert "is refused: " in problem


def test_mysql_executable_comments_are_refused() -> None:
    assert sql_script_problem("SELECT 1 /*! ; COMMIT */", "mysql") == (
        "MySQL executable comments /*! ... */ are not allowed; write the SQL without them"
    )


SPLITS = [
    ("postgresql", "SELECT 'a;b'; SELECT \"x;y\" FROM t; -- c;\nSELECT 1 /* ; */", 3),
    ("postgresql", "SELECT 'it''s; fine'; SELECT 2", 2),
    (
        "postgresql",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$; SELECT f()",
        2,
    ),
    (
        "postgresql",
        "CREATE FUNCTION f() RETURNS text AS $body$ SELECT 'a;$$;b' $body$ LANGUAGE sql; SELECT 2",
        2,
    ),
    ("postgresql", "SELECT E'it\\'s;'; SELECT 'C:\\'; SELECT 3", 3),
    (
        "postgresql",
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3",
        2,
    ),
    (
        "postgresql",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); DELETE FROM u); SELECT 1",
        2,
    ),
    ("postgresql", "/* a /* nested; */ still; */ SELECT 1; SELECT 2", 2),
    (
        "sqlite",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET b = CASE WHEN 1 THEN 'x' END; "
        "INSERT INTO log VALUES (1); END; SELECT 1",
        2,
    ),
    ("sqlite", "SELECT [a;b] FROM t; SELECT `c;d`; SELECT 'e\\'; SELECT 4", 4),
    ("sqlite", "CREATE TABLE t (trigger TEXT, begin INT); INSERT INTO t VALUES ('a', 1)", 2),
    ("sqlite", "SELECT 1 -- the end;\n; ; SELECT 2;", 2),
    ("mysql", "SELECT 'it\\'s;'; SELECT \"a;b\"; SELECT `c;d`; # x;\nSELECT 1 -- y;\n; SELECT 1--1", 5),
    (
        "mysql",
        "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; CASE WHEN 1 THEN SELECT 2; END CASE; "
        "lbl: LOOP LEAVE lbl; END LOOP; END; CALL p()",
        2,
    ),
]


@pytest.mark.parametrize(("dialect", "script", "count"), SPLITS)
def test_statement_splitting(dialect: str, script: str, count: int) -> None:
    statements = split_statements(script, dialect)
    assert len(statements) == count, statements
    assert sql_script_problem(script, dialect) is None


async def test_a_failing_statement_rolls_back_the_ones_before(ctx: StepContext) -> None:
    dsn = await _scratch(ctx)
    script = "INSERT INTO scratch VALUES (3); UPDATE scratch SET n = n * 10; INSERT INTO nope VALUES (1)"
    with pytest.raises(PluginError) as err:
        SqlExecute({"dsn": dsn, "sql": script}).execute(ctx)
    assert str(err.value) == (
        "SQL failed on sqlite:///scratch.db, nothing was changed: statement 3 of 3 "
        "`INSERT INTO nope VALUES (1)`: no such table: nope"
    )
    with sqlite3.connect(ctx.data_root / "scratch.db") as conn:
        assert conn.execute("SELECT n FROM scratch ORDER BY n").fetchall() == [(1,), (2,)]


async def test_triggers_returning_and_row_counts_on_sqlite(ctx: StepContext) -> None:
    dsn = await _scratch(ctx)
    script = (
        "CREATE TABLE log (n INTEGER);\n"
        "CREATE TRIGGER keep AFTER INSERT ON scratch BEGIN INSERT INTO log VALUES (new.n); "
        "UPDATE log SET n = n + 0; END;\n"
        "INSERT INTO scratch VALUES (3), (4) RETURNING n;"
    )
    db = parse_dsn(dsn, ctx.data_root)
    assert execute_script(db, script) > 0
    with sqlite3.connect(ctx.data_root / "scratch.db") as conn:
        assert conn.execute("SELECT n FROM scratch ORDER BY n").fetchall() == [(1,), (2,), (3,), (4,)]
        assert conn.execute("SELECT n FROM log ORDER BY n").fetchall() == [(3,), (4,)]
    assert execute_script(db, "UPDATE scratch SET n = n + 1 WHERE n > 2; DELETE FROM log") == 4


async def test_sql_load_still_works_with_the_guard(ctx: StepContext) -> None:
    dsn = await _scratch(ctx)
    changes = pl.DataFrame({"n": [2, 5]})
    await SqlLoad({"dsn": dsn, "table": "scratch", "mode": "upsert", "key": "n"}).load(ctx, changes)
    await SqlLoad({"dsn": dsn, "table": "scratch", "mode": "replace"}).load(ctx, changes)
    frame = await SqlExtract({"dsn": dsn, "table": "scratch"}).extract(ctx)
    assert frame["n"].to_list() == [2, 5]


# -- PostgreSQL and MariaDB ---------------------------------------------------------------------------------

# the integration fixtures (they skip with a clear message when the server is unreachable)
postgres_url = integration.postgres_url
postgres_dsn = integration.postgres_dsn
mariadb_url = integration.mariadb_url
mariadb_dsn = integration.mariadb_dsn


@pytest.fixture(params=["postgresql", "mariadb"])
def server_dsn(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("postgres_dsn" if request.param == "postgresql" else "mariadb_dsn"))


def _count(dsn: str, root: Path, table: str) -> int:
    conn = connect(parse_dsn(dsn, root))
    try:
        cursor = conn.cursor()
        cursor.execute(f"SELECT count(*) FROM {table}")
        return int(cursor.fetchone()[0])
    finally:
        conn.rollback()
        conn.close()


@pytest.mark.integration
def test_servers_roll_back_every_statement_when_one_fails(server_dsn: str, ctx: StepContext) -> None:
    table = f"guard_{uuid.uuid4().hex[:8]}"
    SqlExecute({"dsn": server_dsn, "sql": f"CREATE TABLE {table} (n INTEGER)"}).execute(ctx)
    script = f"INSERT INTO {table} VALUES (1); INSERT INTO {table} VALUES (2); INSERT INTO nope VALUES (3)"
    with pytest.raises(
        PluginError, match=r"^SQL failed on .*, nothing was changed: statement 3 of 3 `INSERT INTO nope"
    ):
        SqlExecute({"dsn": server_dsn, "sql": script}).execute(ctx)
    assert _count(server_dsn, ctx.data_root, table) == 0
    db = parse_dsn(server_dsn, ctx.data_root)
    assert execute_script(db, f"INSERT INTO {table} VALUES (1); UPDATE {table} SET n = 2; SELECT 1") == 2
    for script in ("COMMIT", f"INSERT INTO {table} VALUES (9); ROLLBACK", "START TRANSACTION"):
        with pytest.raises(PluginError, match="is refused: transaction control is not allowed"):
            SqlExecute({"dsn": server_dsn, "sql": script}).execute(ctx)
    assert _count(server_dsn, ctx.data_root, table) == 1


@pytest.mark.integration
def test_a_statement_the_splitter_missed_never_runs_as_two(
    server_dsn: str, ctx: StepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"guard_{uuid.uuid4().hex[:8]}"
    SqlExecute({"dsn": server_dsn, "sql": f"CREATE TABLE {table} (n INTEGER)"}).execute(ctx)
    monkeypatch.setattr(sql_plugins, "check_sql_script", lambda sql, dialect: [sql])  # one "statement"
    with pytest.raises(PluginError, match="nothing was changed: statement 1 of 1"):
        SqlExecute({"dsn": server_dsn, "sql": f"INSERT INTO {table} VALUES (1); COMMIT"}).execute(ctx)
    assert _count(server_dsn, ctx.data_root, table) == 0


@pytest.mark.integration
def test_postgres_dollar_quoted_bodies_keep_their_semicolons(postgres_dsn: str, ctx: StepContext) -> None:
    script = (
        "CREATE FUNCTION guard_twice(x integer) RETURNS integer LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n  x := x * 2;\n  RETURN x; -- ; in a comment\nEND\n$body$;\n"
        "CREATE TABLE guard_t AS SELECT guard_twice(21) AS n, 'a;b' AS s;"
    )
    SqlExecute({"dsn": postgres_dsn, "sql": script}).execute(ctx)
    assert _count(postgres_dsn, ctx.data_root, "guard_t WHERE n = 42 AND s = 'a;b'") == 1
    with pytest.raises(PluginError, match="statement 1 of 1 `DO .*`: invalid transaction termination"):
        SqlExecute({"dsn": postgres_dsn, "sql": "DO $$ BEGIN COMMIT; END $$"}).execute(ctx)


@pytest.mark.integration
def test_mariadb_procedure_bodies_and_local_files(
    mariadb_dsn: str, ctx: StepContext, secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (
        "CREATE TABLE guard_t (n INTEGER);\n"
        "CREATE PROCEDURE guard_fill() BEGIN\n  INSERT INTO guard_t VALUES (1);\n"
        "  IF 1 THEN INSERT INTO guard_t VALUES (2); END IF;\nEND;\n"
        "CALL guard_fill();"
    )
    SqlExecute({"dsn": mariadb_dsn, "sql": script}).execute(ctx)
    assert _count(mariadb_dsn, ctx.data_root, "guard_t") == 2
    load = f"LOAD DATA LOCAL INFILE '{secrets_dir / 'key.csv'}' INTO TABLE guard_t"
    with pytest.raises(PluginError, match="is refused: LOAD DATA LOCAL reads files of the Pipedeck worker"):
        SqlExecute({"dsn": mariadb_dsn, "sql": load}).execute(ctx)
    monkeypatch.setattr(sql_plugins, "check_sql_script", split_statements)
    with pytest.raises(PluginError) as err:  # the client does not offer local files either
        SqlExecute({"dsn": mariadb_dsn, "sql": load}).execute(ctx)
    assert CANARY not in str(err.value)
    assert _count(mariadb_dsn, ctx.data_root, "guard_t") == 2
