"""Built-in plugins: generate rows from SQL expressions, for demos and tests."""

from __future__ import annotations

import re
import secrets as _random_source
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.plugins.base import ExtractPlugin, PluginError, StepContext
from orchestrator.plugins.expressions import parse_expr, polars_errors
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.sqlguard import check_polars_sql

if TYPE_CHECKING:
    import asyncio

    import polars as pl
else:
    asyncio = LazyModule("asyncio")  # the event loop is a run's, not validation's
    pl = LazyModule("polars")

#: the functions generate_rows adds to Polars SQL (rewritten into hidden uniform columns before Polars runs)
RANDOM_FUNCTIONS = ("random", "random_int", "random_choice")
_RANDOM_CALL = re.compile(r"\b(random_int|random_choice|random)\s*\(", re.IGNORECASE)
_INT = re.compile(r"^-?\d+$")
_TWO_POW_64 = float(2**64)

COLUMNS_HELP = (
    "Output columns in order, each a SQL expression evaluated by Polars. Available: `i` (0-based row index), "
    "`row_number` (1-based), columns defined earlier in this mapping, SQL functions and operators "
    "(CASE WHEN, CAST, ||, %, concat, upper, round...), `random()` (a uniform float in [0, 1)), "
    "`random_int(lo, hi)` (an integer from lo to hi inclusive) and `random_choice('a', 'b', ...)` "
    "(one of the literals). Each random call draws independently and is reproducible with `seed`."
)


class GenerateRowsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    rows: int = Field(ge=0, le=1_000_000_000, description="Number of rows to generate", examples=[1000])
    columns: dict[str, str] = Field(
        min_length=1,
        description=COLUMNS_HELP,
        examples=[
            {
                "id": "row_number",
                "amount": "round(random() * 100, 2)",
                "country": "random_choice('FR', 'DE', 'ES')",
                "customer_id": "random_int(1, 500)",
            }
        ],
        # validation checks these with the guard, allowing the functions generate_rows adds
        json_schema_extra={"format": "expression", "functions": list(RANDOM_FUNCTIONS)},
    )
    seed: int | None = Field(
        default=None, description="Seed for random(): the same seed gives the same rows", examples=[42]
    )


def _split_args(text: str) -> list[str]:
    """Split a call's argument text on commas outside single-quoted literals."""
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        args.append("".join(current).strip())
    return args


def _closing_paren(text: str, start: int) -> int:
    quoted = False
    for pos in range(start, len(text)):
        ch = text[pos]
        if ch == "'":
            quoted = not quoted
        elif ch == ")" and not quoted:
            return pos
    raise PluginError(f"missing ')' in '{text}'")


def _outside_literals(text: str, pos: int) -> bool:
    return text.count("'", 0, pos) % 2 == 0


class _Randoms:
    """Rewrites random calls into references to hidden uniform columns, one per call."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def _new(self) -> str:
        name = f"__pipedeck_random_{len(self.names)}"
        self.names.append(name)
        return name

    def rewrite(self, column: str, text: str) -> str:
        out, pos = [], 0
        for match in _RANDOM_CALL.finditer(text):
            if match.start() < pos or not _outside_literals(text, match.start()):
                continue
            end = _closing_paren(text, match.end())
            out.append(text[pos : match.start()])
            out.append(self._call(column, match.group(1).lower(), _split_args(text[match.end() : end])))
            pos = end + 1
        out.append(text[pos:])
        return "".join(out)

    def _call(self, column: str, func: str, args: list[str]) -> str:
        uniform = f'"{self._new()}"'
        if func == "random":
            if args:
                raise PluginError(f"column '{column}': random() takes no arguments")
            return uniform
        if func == "random_int":
            if len(args) != 2 or not all(_INT.match(a) for a in args):
                raise PluginError(
                    f"column '{column}': random_int needs two integers, e.g. random_int(1, 100)"
                )
            lo, hi = int(args[0]), int(args[1])
            if hi < lo:
                raise PluginError(f"column '{column}': random_int({lo}, {hi}) needs lo <= hi")
            return f"({lo} + CAST(FLOOR({uniform} * {hi - lo + 1}) AS BIGINT))"
        if not args:
            raise PluginError(f"column '{column}': random_choice needs at least one value")
        whens = " ".join(f"WHEN {n} THEN {value}" for n, value in enumerate(args[:-1]))
        pick = f"CAST(FLOOR({uniform} * {len(args)}) AS BIGINT)"
        return f"(CASE {pick} {whens} ELSE {args[-1]} END)" if whens else f"({args[0]})"


def generate_frame(rows: int, columns: dict[str, str], seed: int | None = None) -> pl.LazyFrame:
    """The lazy plan of ``generate_rows``: each column may use ``i``, ``row_number`` and earlier columns."""
    randoms = _Randoms()
    exprs = {}
    for name, text in columns.items():
        field = f"column '{name}'"
        if text.strip():  # the guard sees what the user wrote; parse_expr checks the rewrite again
            check_polars_sql(text, expression=True, extra_functions=RANDOM_FUNCTIONS, field=field)
        exprs[name] = parse_expr(randoms.rewrite(name, text), field)
    base_seed = _random_source.randbits(32) if seed is None else seed
    index = pl.int_range(0, rows, dtype=pl.Int64)
    plan = pl.LazyFrame().select(index.alias("i")).with_columns((pl.col("i") + 1).alias("row_number"))
    if randoms.names:
        plan = plan.with_columns(
            (pl.col("i").hash(base_seed + 7919 * k).cast(pl.Float64) / _TWO_POW_64).alias(name)
            for k, name in enumerate(randoms.names)
        )
    known = ["i", "row_number"]
    for name, expr in exprs.items():
        plan = plan.with_columns(expr.alias(name))
        with polars_errors(pl.DataFrame(schema=dict.fromkeys(known, pl.Int64)), f"column '{name}'"):
            plan.collect_schema()
        known.append(name)
    return plan.select(list(columns))


class GenerateRows(ExtractPlugin):
    name = "generate_rows"
    description = (
        "Generate rows from SQL expressions (row index, random values with a seed): for demos and tests."
    )
    Args = GenerateRowsArgs

    async def extract(self, ctx: StepContext) -> pl.DataFrame:
        args: GenerateRowsArgs = self.args
        rows = args.rows if ctx.row_limit is None else min(args.rows, ctx.row_limit)
        plan = generate_frame(rows, args.columns, args.seed)
        with polars_errors(what="generate_rows"):
            frame = await asyncio.to_thread(plan.collect)
        ctx.progress(frame.height, frame.height)
        return frame
