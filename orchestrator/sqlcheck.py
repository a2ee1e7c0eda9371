"""Design-time checks of Polars SQL that need no data: the text parses (Polars' own SQL parser, as the
step will parse it at run time), and the columns it names exist when the previous step's columns are known.

Column checks take ``{step: [columns]}`` (a step's output columns, keyed ``phase.step_id`` or ``step_id``),
learned elsewhere from a preview or a run; a step whose input is not known is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.errors import Loc, Problem, format_path
from orchestrator.phases import PhaseName

if TYPE_CHECKING:
    from orchestrator.plugins.registry import PluginRegistry
    from orchestrator.spec import PipelineSpec, StepSpec

_UNSUPPORTED = re.compile(r"unsupported function '([^']+)'", re.IGNORECASE)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_problem(text: str, *, expression: bool, functions: Collection[str] = ()) -> str | None:
    """Why Polars cannot parse ``text`` (one SQL expression, or a query over the table ``data``), or None.

    ``functions``: names the step implements itself (``mean(x)`` in ``aggregate``): Polars' "unsupported
    function" for them is not a problem."""
    import polars as pl

    if not text.strip():
        return "is empty: write a SQL expression such as amount > 10" if expression else "is empty"
    try:
        if expression:
            pl.sql_expr(text)
        else:
            context = pl.SQLContext(frames={"data": pl.LazyFrame()}, register_globals=False)
            context.execute(text, eager=False)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        reason = _first_line(exc)
        unsupported = _UNSUPPORTED.search(reason)
        if unsupported and unsupported.group(1).lower() in {f.lower() for f in functions}:
            return None
        if expression:
            return f"'{text}' is not a valid SQL expression: {reason}"
        return f"the query is not valid SQL: {reason}"
    return None


def _output_key(columns: Mapping[str, Sequence[str]], phase: str, step: StepSpec) -> Sequence[str] | None:
    return columns.get(f"{phase}.{step.id}", columns.get(step.id))


def _inputs(
    pipeline: PipelineSpec, columns: Mapping[str, Sequence[str]]
) -> Iterator[tuple[Loc, StepSpec, str, Sequence[str]]]:
    """(loc, step, previous step's name, its columns) of every transform and load step whose input is
    known: a transform step reads the previous one's output (the first: the merge's, or the one extract
    step's), a load step the last transform step's (or the extract's when there is no transform)."""
    source: tuple[str, Sequence[str] | None] = ("", None)
    extract = pipeline.phases.extract
    if extract is not None:
        if extract.merge is not None:
            source = (extract.merge.id, _output_key(columns, "extract", extract.merge))
        elif len(extract.steps) == 1:
            source = (extract.steps[0].id, _output_key(columns, "extract", extract.steps[0]))
    transform = pipeline.phase(PhaseName.TRANSFORM)
    for i, step in enumerate(transform.steps if transform is not None else []):
        if source[1] is not None:
            yield ("phases", "transform", "steps", i), step, source[0], source[1]
        source = (step.id, _output_key(columns, "transform", step))
    load = pipeline.phase(PhaseName.LOAD)
    for i, step in enumerate(load.steps if load is not None else []):
        if source[1] is not None:
            yield ("phases", "load", "steps", i), step, source[0], source[1]


def column_problems(
    pipeline: PipelineSpec, registry: PluginRegistry, columns: Mapping[str, Sequence[str]]
) -> list[Problem]:
    """Columns that the steps of ``pipeline`` name but their input lacks (in SQL expressions and Polars
    queries, and in the arguments marked as naming columns: ``COLUMN_NAMES`` / ``COLUMN_KEYS``), for the
    steps whose input columns ``columns`` knows."""
    problems: list[Problem] = []
    for loc, step, previous, known in [*_merge_inputs(pipeline, columns), *_inputs(pipeline, columns)]:
        if step.plugin not in registry:
            continue
        cls = registry.get(step.plugin)
        for name, info in cls.Args.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            key = info.alias or name
            if key not in step.args:
                continue
            where = (*loc, "args", key)
            if extra.get("input_columns") in ("names", "keys"):
                problems += _named_columns(
                    step.args[key], str(extra["input_columns"]), where, previous, known
                )
                continue
            if extra.get("format") not in ("expression", "sql"):
                continue
            if extra.get("format") == "sql" and extra.get("dialect") != "polars":
                continue
            problems += _field_columns(step.args[key], extra, where, previous, list(known))
    return problems


def _merge_inputs(
    pipeline: PipelineSpec, columns: Mapping[str, Sequence[str]]
) -> Iterator[tuple[Loc, StepSpec, str, Sequence[str]]]:
    """The merge, once every extract step's columns are known: it reads them all (a column must be in
    each: the check is against the columns they share)."""
    extract = pipeline.phases.extract
    if extract is None or extract.merge is None:
        return
    known = [_output_key(columns, "extract", s) for s in extract.steps]
    if any(k is None for k in known):
        return
    shared = [c for c in known[0] or [] if all(c in (k or []) for k in known[1:])]
    yield ("phases", "extract", "merge"), extract.merge, ", ".join(s.id for s in extract.steps), shared


def _named_columns(value: Any, kind: str, where: Loc, previous: str, known: Sequence[str]) -> list[Problem]:
    """Column names given as such (a name, a list of them, or a mapping's keys) that the input lacks."""
    if "${{" in str(value):
        return []
    names: list[tuple[Loc, str]] = []
    if kind == "keys" and isinstance(value, Mapping):
        names = [((*where, str(k)), str(k)) for k in value]
    elif isinstance(value, str):
        names = [(where, value)]
    elif isinstance(value, list):
        names = [((*where, i), str(v)) for i, v in enumerate(value) if isinstance(v, str)]
    return [
        Problem(
            f"column '{name}' is not produced by the previous step '{previous}' "
            f"(its columns: {', '.join(known) or 'none'})",
            format_path(loc),
        )
        for loc, name in names
        if name not in known
    ]


def _field_columns(
    value: Any, extra: Mapping[str, Any], where: Loc, previous: str, known: list[str]
) -> list[Problem]:
    functions = {str(f).lower() for f in extra.get("functions", ())}
    texts: list[tuple[Loc, str, str]] = []  # (loc, text, name it defines)
    if isinstance(value, str):
        texts.append((where, value, ""))
    elif isinstance(value, Mapping):
        texts += [((*where, str(k)), v, str(k)) for k, v in value.items() if isinstance(v, str)]
    problems = []
    available = list(known)
    for loc, text, defines in texts:
        if "${{" in text or text.strip().lower() in functions:
            continue
        missing = (
            _query_missing(text, available)
            if extra.get("format") == "sql"
            else _expression_missing(text, available)
        )
        for column in missing:
            problems.append(
                Problem(
                    f"column '{column}' is not produced by the previous step '{previous}' "
                    f"(its columns: {', '.join(known) or 'none'})",
                    format_path(loc),
                )
            )
        if defines:  # with_columns: a column defined earlier may be used by the next ones
            available.append(defines)
    return problems


def _expression_missing(text: str, available: list[str]) -> list[str]:
    import polars as pl

    try:
        names = pl.sql_expr(text).meta.root_names()
    except (pl.exceptions.PolarsError, ValueError):
        return []  # unparsable: reported by the parse check, or a function the step implements itself
    return [n for n in dict.fromkeys(names) if n not in available]


def _query_missing(text: str, available: list[str]) -> list[str]:
    import polars as pl

    frame = pl.LazyFrame(schema=dict.fromkeys(available, pl.Null))
    try:
        context = pl.SQLContext(frames={"data": frame}, register_globals=False)
        context.execute(text, eager=False).collect_schema()
    except pl.exceptions.ColumnNotFoundError as exc:
        found = re.search(r'column "?([^"\s;]+)"?', _first_line(exc))
        return [found.group(1) if found else _first_line(exc)]
    except (pl.exceptions.PolarsError, ValueError):
        return []  # types are not known here: only a missing column is certain
    return []
