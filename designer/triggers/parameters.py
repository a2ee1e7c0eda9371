"""A project's run parameters: the declaration (``RunParameter`` rows, typed by the engine's
``orchestrator.Parameter``), the values every way of starting a run is checked against, and the Run form
generated from it with the step arguments' schema-form code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max

from designer.editor import schema_forms
from designer.editor.models import Project
from designer.runs.launch import RunRefused
from designer.triggers.models import RunParameter
from orchestrator import (
    Parameter,
    ParameterError,
    check_values,
    make_parameter,
    parameters_schema,
    reference_values as engine_reference_values,
)


class InvalidValues(RunRefused):
    """Run parameter values that do not fit the declaration; ``problems`` maps a name to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"{name}: {why}" for name, why in self.problems.items()]
        super().__init__("Run parameters: " + "; ".join(lines) + ".")


def declared(project: Project) -> list[Parameter]:
    """The project's parameters, in their order."""
    return [row.as_parameter() for row in RunParameter.objects.filter(project=project)]


def reference_values(project: Project) -> dict[str, Any]:
    """What the editor checks ``${{ variables.NAME }}`` of a declared parameter with (the engine's rule:
    its default, else a value of its type)."""
    return engine_reference_values(declared(project))


def recheck_pipelines(project: Project) -> None:
    """Validate again the project's pipelines that use references (a declared parameter defines one)."""
    from designer.editor import pipelines

    for pipeline in project.pipelines.all():
        if "${{" in json.dumps(pipeline.spec):
            pipelines.store(pipeline, pipeline.spec)


def check_run_values(
    project: Project, values: Mapping[str, Any], parameters: list[Parameter] | None = None
) -> dict[str, Any]:
    """``values`` typed by the project's declaration, defaults filled in; InvalidValues otherwise."""
    try:
        return check_values(declared(project) if parameters is None else parameters, values)
    except ParameterError as exc:
        raise InvalidValues(exc.problems) from None


def schema(project: Project, parameters: list[Parameter] | None = None) -> dict[str, Any]:
    """The JSON schema the parameter forms are rendered from."""
    return parameters_schema(declared(project) if parameters is None else parameters)


def form_fields(
    project: Project,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    parameters: list[Parameter] | None = None,
) -> list[schema_forms.SchemaField]:
    """The form's fields (``templates/editor/_field_list.html`` renders them), with values and errors."""
    return schema_forms.fields_for(
        schema(project, parameters),
        dict(values or {}),
        {name: [why] for name, why in (errors or {}).items()},
    )


def values_from_form(
    project: Project, data: Any, parameters: list[Parameter] | None = None
) -> dict[str, Any]:
    """The values a posted parameter form holds (``arg-NAME`` fields), not yet checked."""
    values, unreadable = schema_forms.parse_args(schema(project, parameters), data)
    if unreadable:
        raise InvalidValues({name: "; ".join(why) for name, why in unreadable.items()})
    return values


@transaction.atomic
def set_parameter(
    project: Project,
    name: str,
    type: str,
    default: Any = None,
    description: str = "",
    required: bool = False,
    choices: list[str] | None = None,
) -> RunParameter:
    """Declare (or redeclare) parameter ``name``; ParameterError says what is wrong with it."""
    parameter = make_parameter(name, type, default, description, required, choices or [])
    fields = {
        "type": parameter.type.value,
        "default": parameter.default,
        "description": parameter.description,
        "required": parameter.required,
        "choices": list(parameter.choices),
    }
    row = RunParameter.objects.filter(project=project, name=name).first()
    if row is None:
        last = RunParameter.objects.filter(project=project).aggregate(m=Max("position"))["m"]
        row = RunParameter.objects.create(project=project, name=name, position=(last or 0) + 1, **fields)
    else:
        for key, value in fields.items():
            setattr(row, key, value)
        row.save()
    recheck_pipelines(project)
    return row


@transaction.atomic
def delete_parameter(project: Project, name: str) -> bool:
    """Remove parameter ``name``; False when there was none."""
    deleted, _ = RunParameter.objects.filter(project=project, name=name).delete()
    if deleted:
        recheck_pipelines(project)
    return bool(deleted)
