"""Storing a run's events and folding them into its PipelineRun / StepRun rows, one transaction per batch."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model

from designer.runs.models import PipelineRun, Run, RunEvent, StepRun
from designer.runs.queue import Claim, StaleClaim, owned
from orchestrator import (
    PipelineFinished,
    PipelineStarted,
    RunFinished,
    Status,
    StepFinished,
    StepProgress,
    StepStarted,
)


def _when(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def event_record(event: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    """(kind, ts, payload) of an ``Event.to_dict()``."""
    payload = {k: v for k, v in event.items() if k not in ("kind", "ts")}
    return event["kind"], float(event["ts"]), payload


def fold_units(
    events: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str, str], dict[str, Any]]]:
    """The field updates a batch of events makes: per pipeline name, and per (pipeline, phase, step)."""
    pipelines: dict[str, dict[str, Any]] = {}
    steps: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in events:
        kind, ts = event["kind"], float(event["ts"])
        if kind == PipelineStarted.kind:
            pipelines.setdefault(event["pipeline"], {}).update(state=Status.RUNNING, started_at=_when(ts))
        elif kind == PipelineFinished.kind:
            pipelines.setdefault(event["pipeline"], {}).update(
                state=str(event["status"]),
                finished_at=_when(ts),
                duration=event.get("duration"),
                error=event.get("error") or "",
            )
        elif kind in (StepStarted.kind, StepProgress.kind, StepFinished.kind):
            fields = steps.setdefault((event["pipeline"], event["phase"], event["step"]), {})
            if kind == StepStarted.kind:
                fields.update(
                    state=Status.RUNNING, started_at=_when(ts), plugin=event.get("plugin", ""), error=""
                )
            elif kind == StepProgress.kind:
                fields.update(progress_rows=event.get("rows"), progress_total=event.get("total"))
            else:
                fields.update(
                    state=str(event["status"]),
                    finished_at=_when(ts),
                    duration=event.get("duration"),
                    rows_in=event.get("rows_in"),
                    rows_out=event.get("rows_out"),
                    error=event.get("error") or "",
                )
    return pipelines, steps


def _column_field(model: type[Model], name: str) -> tuple[Field[Any, Any], str]:
    """``model``'s field ``name`` and its column (every field written here is a concrete one)."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column is not None, f"{model.__name__}.{name} has no column"
    return field, field.column


def _set_clause(model: type[Model], fields: dict[str, Any]) -> tuple[str, list[Any]]:
    qn = connection.ops.quote_name
    columns, values = [], []
    for name, value in fields.items():
        field, column = _column_field(model, name)
        columns.append(f"{qn(column)} = %s")
        values.append(field.get_db_prep_save(value, connection))
    return ", ".join(columns), values


def _update(model: type[Model], fields: dict[str, Any], where: str, params: list[Any]) -> int:
    """``UPDATE <model> SET <fields> WHERE <where>``; the number of rows matched."""
    sets, values = _set_clause(model, fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {sets} WHERE {where}",
            [*values, *params],
        )
        matched: int = cursor.rowcount
        return matched


def _apply_units(run_id: int, events: list[dict[str, Any]]) -> None:
    # Plain UPDATEs: building each query with the ORM cost ~2 ms, i.e. most of a batch's store time,
    # and every live event waits for its batch to be stored before it is published.
    qn = connection.ops.quote_name
    pipelines, steps = fold_units(events)
    for name, fields in pipelines.items():
        if not _update(PipelineRun, fields, f"{qn('run_id')} = %s AND {qn('name')} = %s", [run_id, name]):
            PipelineRun.objects.create(run_id=run_id, name=name, position=999, **fields)
        if fields.get("finished_at") is not None:  # its steps that never started (after a failure): skipped
            StepRun.objects.filter(
                pipeline_run__run_id=run_id, pipeline_run__name=name, state=Status.QUEUED
            ).update(state=Status.SKIPPED)
    parent_of = (
        f"{qn('pipeline_run_id')} = (SELECT {qn('id')} FROM {qn(PipelineRun._meta.db_table)}"
        f" WHERE {qn('run_id')} = %s AND {qn('name')} = %s) AND {qn('phase')} = %s AND {qn('step_id')} = %s"
    )
    for (pipeline, phase, step), fields in steps.items():
        if not _update(StepRun, fields, parent_of, [run_id, pipeline, phase, step]):
            parent, _ = PipelineRun.objects.get_or_create(
                run_id=run_id, name=pipeline, defaults={"position": 999}
            )
            StepRun.objects.create(pipeline_run=parent, phase=phase, step_id=step, position=999, **fields)


def _insert_events(run_id: int, first_seq: int, events: list[dict[str, Any]]) -> None:
    """The batch's rows in multi-row INSERTs (``bulk_create`` costs a model instance and more per row)."""
    qn = connection.ops.quote_name
    fields = [_column_field(RunEvent, name) for name in ("run", "seq", "kind", "payload", "ts")]
    params: list[Any] = []
    for offset, event in enumerate(events):
        kind, ts, payload = event_record(event)
        values = (run_id, first_seq + offset, kind, payload, _when(ts))
        params.extend(f.get_db_prep_save(v, connection) for (f, _), v in zip(fields, values, strict=True))
    columns = ", ".join(qn(column) for _, column in fields)
    row = f"({', '.join(['%s'] * len(fields))})"
    per_statement = min(100, (connection.features.max_query_params or 500) // len(fields))
    with connection.cursor() as cursor:
        for start in range(0, len(events), per_statement):
            count = min(per_statement, len(events) - start)
            cursor.execute(
                f"INSERT INTO {qn(RunEvent._meta.db_table)} ({columns}) VALUES {', '.join([row] * count)}",
                params[start * len(fields) : (start + count) * len(fields)],
            )


def store_events(claim: Claim, first_seq: int, events: list[dict[str, Any]]) -> None:
    """Store ``events`` as seq first_seq, first_seq+1...; raises StaleClaim (writing nothing) if not ours."""
    last_seq = first_seq + len(events) - 1
    with transaction.atomic():
        # Conditional on the attempt: also takes the row lock (PostgreSQL) so the reaper waits for us.
        if owned(claim).update(last_seq=last_seq) != 1:
            raise StaleClaim(claim.run_id)
        _insert_events(claim.run_id, first_seq, events)
        _apply_units(claim.run_id, events)


def reset_units(run_id: int) -> None:
    """A new attempt starts from scratch: every pipeline and step back to queued."""
    blank = {"state": Status.QUEUED, "started_at": None, "finished_at": None, "duration": None, "error": ""}
    PipelineRun.objects.filter(run_id=run_id).update(**blank)
    StepRun.objects.filter(pipeline_run__run_id=run_id).update(
        rows_in=None, rows_out=None, progress_rows=None, progress_total=None, **blank
    )


def close_units(run_id: int, error: str = "") -> None:
    """When a run is over: what never started was skipped, what was still running was cancelled (or
    failed with ``error``). Two plain UPDATEs, once per run (the ORM's CASE costs more to build than
    to run)."""
    qn = connection.ops.quote_name
    pipelines = qn(PipelineRun._meta.db_table)
    scopes = (
        (pipelines, f"{qn('run_id')} = %s"),
        (
            qn(StepRun._meta.db_table),
            f"{qn('pipeline_run_id')} IN (SELECT {qn('id')} FROM {pipelines} WHERE {qn('run_id')} = %s)",
        ),
    )
    running, queued, state = Status.RUNNING.value, Status.QUEUED.value, qn("state")
    ended = (Status.FAILED if error else Status.CANCELLED).value
    sets = f"{state} = CASE WHEN {state} = %s THEN %s ELSE %s END"
    params: list[Any] = [running, ended, Status.SKIPPED.value]
    if error:  # every SET expression reads the row as it was: ``state`` is still the old one here
        sets += f", {qn('error')} = CASE WHEN {state} = %s THEN %s ELSE {qn('error')} END"
        params += [running, error]
    with connection.cursor() as cursor:
        for table, scope in scopes:
            cursor.execute(
                f"UPDATE {table} SET {sets} WHERE {scope} AND {state} IN (%s, %s)",
                [*params, run_id, queued, running],
            )


def finish_without_engine(run_id: int, status: str, error: str) -> RunEvent:
    """Close a run that the engine will not finish (cancelled before it started, its worker lost): its
    units closed (running ones ``failed`` with ``error``, or ``cancelled``), its ``run_finished`` event
    appended. The caller has already set the run's own state."""
    close_units(run_id, error if status == Status.FAILED else "")
    return append_event(
        run_id, RunFinished.kind, {"status": status, "duration": 0.0, "error": error}, time.time()
    )


def append_event(run_id: int, kind: str, payload: dict[str, Any], ts: float) -> RunEvent:
    """Append one event after the last stored one (for writers other than the run's worker: the reaper)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().only("last_seq").get(pk=run_id)
        seq = run.last_seq + 1
        Run.objects.filter(pk=run_id).update(last_seq=seq)
        return RunEvent.objects.create(run_id=run_id, seq=seq, kind=kind, payload=payload, ts=_when(ts))
