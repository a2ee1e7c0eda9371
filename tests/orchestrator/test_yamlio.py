"""Loading and dumping project files: YAML 1.2 types, safety limits, located errors, stable round trips."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from orchestrator.errors import Problem, SpecError
from orchestrator.plugins.registry import PluginRegistry
from orchestrator.resolve import substitute_variables
from orchestrator.spec import ProjectSpec
from orchestrator.yamlio import (
    CoreLoader,
    dump_pipeline,
    dump_project,
    load_project,
    needs_quotes,
    parse_scalar,
)

DESIGN_EXAMPLE = """\
variables:
  ORDERS: orders.csv
---
secrets:
  CRM_DSN: {plugin: env_secret, args: {name: CRM_DSN}}
  WAREHOUSE: {plugin: env_secret, args: {name: WAREHOUSE_DSN}}
---
concurrency: 2                 # pipelines at once (default 2)
pipelines:
  customers_daily:
    type: ETL
    phases:
      extract: {steps: [{plugin: read_rows, args: {path: customers.csv}}]}
      load: {steps: [{plugin: write_rows, args: {table: customers}}]}
  orders_daily:                # the pipeline's name
    type: ETLT                 # ETL | ELT | ETLT
    description: Daily orders
    needs: customers_daily     # a name or a list of names: runs after them
    phases:
      extract:
        steps:                 # run concurrently
          - id: read_orders
            plugin: read_rows
            args: {path: "${{ variables.ORDERS }}"}
          - id: read_customers
            plugin: read_rows
            args: {path: "${{ secrets.CRM_DSN }}", limit: 5}
        merge: {id: join, plugin: join_rows, args: {on: customer_id}}   # required iff >1 step
      transform:
        steps:                 # run in order, each gets the previous step's output
          - {id: big_only, plugin: keep_rows, args: {expr: "amount > 10"}}
      load:
        steps:                 # run concurrently, each gets the transformed data
          - {id: to_pg, plugin: write_rows, args: {dsn: "${{ secrets.WAREHOUSE }}", table: orders}}
      transform_at_load:
        steps:                 # run in order, inside the destination
          - {id: summary, plugin: run_sql, args: {sql: "select 1"}}
"""

ETL_BODY = """\
    phases:
      extract: {steps: [{plugin: read_rows, args: {path: a.csv}}]}
      load: {steps: [{plugin: write_rows, args: {table: t}}]}
"""


def errors(text: str | bytes, **kw: Any) -> list[str]:
    """The problems load_project reports, as the user reads them."""
    with pytest.raises(SpecError) as info:
        load_project(text, **kw)
    return [str(p) for p in info.value.problems]


# --- loading -------------------------------------------------------------------------------------------


def test_the_design_example_loads_with_references_kept_as_text(test_registry: PluginRegistry) -> None:
    spec = load_project(DESIGN_EXAMPLE, registry=test_registry)
    orders = spec.pipelines["orders_daily"]
    assert spec.variables == {"ORDERS": "orders.csv"}
    assert spec.secrets["WAREHOUSE"].args == {"name": "WAREHOUSE_DSN"}
    assert orders.needs == ["customers_daily"]
    extract = orders.phases.extract
    assert extract is not None and extract.merge is not None
    assert extract.steps[0].args == {"path": "${{ variables.ORDERS }}"}
    assert extract.merge.args == {"on": "customer_id"}  # YAML 1.2: the key "on", not True
    assert spec.pipelines["customers_daily"].phases.extract.steps[0].id == "read_rows"  # type: ignore[union-attr]


def test_scalars_follow_the_yaml_1_2_core_schema() -> None:
    values = {
        "on": "on", "off": "off", "yes": "yes", "no": "no", "y": "y", "n": "n", "Yes": "Yes",
        "true": True, "False": False, "null": None, "~": None, "": None,
        "12": 12, "-3": -3, "012": 12, "0o17": 15, "0x1f": 31, "1_000": "1_000",
        "1.5": 1.5, "1e3": 1000.0, ".5": 0.5, "-.inf": float("-inf"),
        "2001-12-14": "2001-12-14", "1:20": "1:20", "0b101": "0b101", "=": "=",
    }  # fmt: skip
    variables = "\n".join(f"  v{i}: {text}" for i, text in enumerate(values))
    spec = load_project(f"variables:\n{variables}\n---\npipelines:\n  a:\n    type: ETL\n{ETL_BODY}")
    assert list(spec.variables.values()) == list(values.values())
    assert [type(v) for v in spec.variables.values()] == [type(v) for v in values.values()]


def test_mapping_keys_are_always_text() -> None:
    spec = load_project(
        f"variables: {{on: 1, 3: x, true: y, null: z}}\n---\npipelines:\n  a:\n    type: ETL\n{ETL_BODY}"
    )
    assert spec.variables == {"on": 1, "3": "x", "true": "y", "null": "z"}


def test_bytes_are_accepted() -> None:
    text = f"pipelines:\n  é:\n    type: ETL\n{ETL_BODY}"
    assert list(load_project(text.encode()).pipelines) == ["é"]


def test_anchors_and_merge_keys_work() -> None:
    text = """\
defaults: &defaults
pipelines:
  a:
    type: ETL
    phases:
      extract: {steps: [&step {plugin: read_rows, args: {path: x}}]}
      load: {steps: [{<<: *step, plugin: write_rows}]}
"""
    spec = load_project(text.replace("defaults: &defaults\n", ""))
    load = spec.pipelines["a"].phases.load
    assert load is not None and load.steps[0].plugin == "write_rows" and load.steps[0].args == {"path": "x"}


def test_files_over_the_size_limit_are_refused() -> None:
    text = f"pipelines:\n  a:\n    type: ETL\n{ETL_BODY}"
    assert errors(text + "#" * 1_048_576) == [
        f"the file is too large: {len(text) + 1_048_576:,} bytes, the limit is 1,048,576 bytes"
    ]
    assert errors(text, max_bytes=100) == [
        f"the file is too large: {len(text)} bytes, the limit is 100 bytes"
    ]


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    assert errors("\n".join(lines)) == [
        "line 1, column 1: aliases are limited: expanding them would add 1,234,567,880 values, "
        "more than the 100,000 allowed"
    ]


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 1001) + "]\n"
    assert errors(text) == ["line 1, column 4: aliases are limited to 1000 per document"]


def test_recursive_aliases_are_refused() -> None:
    assert errors("a: &a [1, *a]\n") == [
        "line 1, column 4: an alias refers to a collection that contains it "
        "(recursive aliases are not allowed)"
    ]


def test_deep_nesting_is_refused() -> None:
    assert errors("a: " + "[" * 70 + "]" * 70) == [
        "line 1, column 68: the data is nested too deeply (more than 64 levels)"
    ]


def test_python_tags_are_refused() -> None:
    text = f"pipelines:\n  a:\n    type: !!python/name:os.system ETL\n{ETL_BODY}"
    assert errors(text) == [
        "line 3, column 11: pipelines.a.type: the tag '!!python/name:os.system' is not allowed: "
        "a project file holds only plain values, lists and mappings"
    ]


def test_yaml_syntax_errors_carry_line_and_column() -> None:
    assert errors("pipelines:\n  a: [1, 2\n  b: 3\n") == [
        "line 3, column 4: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence started on line 2)"
    ]
    assert errors("pipelines:\n  a: b: c\n") == [
        "line 2, column 7: invalid YAML: mapping values are not allowed in this context"
    ]
    assert errors("pipelines:\n\ta: 1\n") == [
        "line 2, column 1: invalid YAML: found character that cannot start any token "
        "(a tab: indent with spaces, not tabs)"
    ]


def test_bad_bytes_and_forbidden_characters_are_located() -> None:
    assert errors(b"pipelines:\n  a: \xff\xfe\n") == [
        "line 2, column 6: the file is not valid UTF-8 text (invalid leading UTF-8 octet)"
    ]
    assert errors("a: 1\nb: \x00") == [
        "line 2, column 4: the character #x0000 is not allowed (control characters are not allowed)"
    ]


def test_windows_line_endings_and_a_byte_order_mark_are_fine() -> None:
    text = f"pipelines:\n  a:\n    type: ETL\n{ETL_BODY}".replace("\n", "\r\n")
    assert list(load_project("\ufeff" + text).pipelines) == ["a"]
    assert list(load_project(b"\xef\xbb\xbf" + text.encode()).pipelines) == ["a"]


def test_a_missing_merge_points_at_the_extract_phase() -> None:
    text = """\
concurrency: 2
pipelines:
  orders:
    type: ETL
    phases:
      load:
        steps: [{plugin: write_rows}]
      extract:
          steps:
            - {plugin: read_rows}
            - {plugin: read_rows}
"""
    assert errors(text) == [
        "line 9, column 11: pipelines.orders.phases.extract: extract has 2 steps, so it needs a 'merge' step "
        "to combine them (for example join_merge)"
    ]


def test_unknown_keys_point_at_the_key_and_suggest_the_right_one() -> None:
    text = "pipelines:\n  a:\n    type: ETL\n    phases:\n      extract:\n        stpes: [{plugin: x}]\n"
    text += "      load: {steps: [{plugin: y, timeot: 3}]}\n"
    assert errors(text) == [
        "line 6, column 9: pipelines.a.phases.extract: unknown key 'stpes'; did you mean 'steps'?",
        "line 7, column 34: pipelines.a.phases.load.steps[0]: unknown key 'timeot'; did you mean 'timeout'?",
    ]


def test_wrong_shapes_and_missing_keys_are_explained() -> None:
    text = "concurrency: lots\npipelines:\n  a:\n    type: ETL\n    phases:\n"
    text += "      extract: {steps: {plugin: x}}\n"
    text += "      load: {steps: [{id: w}]}\n"
    assert errors(text) == [
        "line 1, column 14: concurrency: expected a whole number, got the text 'lots'",
        "line 6, column 24: pipelines.a.phases.extract.steps: expected a list, got a mapping",
        "line 7, column 22: pipelines.a.phases.load.steps[0]: missing required key 'plugin'",
    ]


def test_unknown_needs_and_cycles_point_at_needs() -> None:
    text = f"pipelines:\n  a:\n    type: ETL\n    needs: b\n{ETL_BODY}"
    text += f"  b:\n    type: ETL\n    needs: [a]\n{ETL_BODY}"
    assert errors(text) == [
        "line 4, column 12: pipelines.a.needs: pipelines depend on each other in a cycle: a -> b -> a"
    ]
    text = f"pipelines:\n  a:\n    type: ETL\n    needs: [zz]\n{ETL_BODY}"
    assert errors(text) == [
        "line 4, column 12: pipelines.a.needs: pipeline 'a' needs 'zz', "
        "which is not a pipeline of this project"
    ]


def test_a_missing_pipelines_key_points_at_the_project_document() -> None:
    assert errors("variables: {a: 1}\n---\nconcurrency: 3\n") == [
        "line 3, column 1: missing required key 'pipelines'"
    ]


def test_duplicate_keys_are_refused() -> None:
    text = f"pipelines:\n  a:\n    type: ETL\n    type: ELT\n{ETL_BODY}"
    assert errors(text) == ["line 4, column 5: pipelines.a.type: duplicate key 'type' (first used on line 3)"]


def test_undefined_references_are_located() -> None:
    text = """\
variables: {ORDERS: o.csv}
---
secrets: {DSN: {args: {name: X}}}
---
pipelines:
  a:
    type: ETL
    phases:
      extract: {steps: [{plugin: r, args: {path: "${{ variables.ORDER }}", dsn: "${{ secrets.PWD }}"}}]}
      load: {steps: [{plugin: w, args: {dsn: "x${{ secret.DSN }}", home: "${{ env.HOME }}"}}]}
"""
    assert errors(text) == [
        "line 9, column 50: pipelines.a.phases.extract.steps[0].args.path: variable 'ORDER' is not defined; "
        "did you mean 'ORDERS'?",
        "line 9, column 81: pipelines.a.phases.extract.steps[0].args.dsn: secret 'PWD' is not declared; "
        "declare it in a 'secrets:' document before the project",
        "line 10, column 46: pipelines.a.phases.load.steps[0].args.dsn: '${{ secret.DSN }}' is not a valid "
        "reference; use ${{ variables.NAME }}, ${{ env.NAME }} or ${{ secrets.NAME }}",
    ]


def test_variables_and_secrets_documents_are_merged() -> None:
    text = "variables: {A: 1}\n---\nvariables: {B: 2}\nsecrets: {S: {}}\n---\n"
    text += f"pipelines:\n  a:\n    type: ETL\n{ETL_BODY}"
    spec = load_project(text)
    assert spec.variables == {"A": 1, "B": 2}
    assert spec.secrets["S"].plugin == "env_secret"


def test_document_order_and_shape_are_checked() -> None:
    project = f"pipelines:\n  a:\n    type: ETL\n{ETL_BODY}"
    assert errors(f"{project}---\nvariables: {{A: 1}}\n") == [
        "line 8, column 1: 'variables' must come before the project document"
    ]
    assert errors(f"variables: {{A: 1}}\n{project}") == [
        "line 1, column 1: 'variables' must be in a document of its own, before the project: "
        "separate them with a line '---'"
    ]
    assert errors(f"{project}---\n{project}") == [
        "line 8, column 1: a file holds one project document, but another one starts here "
        "(the first is on line 1)"
    ]
    assert errors("variables: {A: 1}\n---\nvariables: {A: 2}\n---\n" + project) == [
        "line 3, column 13: variables.A: variable 'A' is defined twice"
    ]
    assert errors("- 1\n") == [
        "line 1, column 1: a document must be a mapping of keys (like 'pipelines:'), not a list"
    ]
    assert errors("# nothing\n") == ["the file holds no project document (a document with 'pipelines:')"]


def test_plugin_problems_are_located_when_a_registry_is_given(test_registry: PluginRegistry) -> None:
    text = """\
pipelines:
  a:
    type: ETL
    phases:
      extract: {steps: [{plugin: read_rowz, args: {path: a}}]}
      load:
        steps:
          - plugin: write_rows
            args: {table: t, dns: x}
"""
    assert errors(text, registry=test_registry) == [
        "line 5, column 34: pipelines.a.phases.extract.steps[0].plugin: unknown plugin 'read_rowz'; "
        "did you mean 'read_rows'?",
        "line 9, column 19: pipelines.a.phases.load.steps[0].args: unknown argument 'dns'; "
        "did you mean 'dsn'?",
    ]


def test_spec_error_lists_every_problem_with_the_source() -> None:
    err = SpecError([Problem("boom", "pipelines.a", 3, 5), Problem("too big")], source="p.yaml")
    assert str(err) == "p.yaml: 2 problems\n  line 3, column 5: pipelines.a: boom\n  too big"
    assert str(SpecError([Problem("x", "a", 1, 2)], "f.yaml")) == "f.yaml: line 1, column 2: a: x"


def test_parse_scalar_reads_yaml_1_2_scalars() -> None:
    texts = ["3", "1.5", "true", "on", "null", "", "a: b", "[1", "0o10", "[1, 2]", "!!binary aGk=", "*x"]
    assert [parse_scalar(t) for t in texts] == [
        3, 1.5, True, "on", None, "", "a: b", "[1", 8, "[1, 2]", "!!binary aGk=", "*x",
    ]  # fmt: skip


# --- dumping -------------------------------------------------------------------------------------------


def test_dump_writes_a_stable_readable_file(test_registry: PluginRegistry) -> None:
    spec = load_project(DESIGN_EXAMPLE)
    text = dump_project(spec)
    assert text.startswith(
        textwrap.dedent("""\
            variables:
              ORDERS: orders.csv
            ---
            secrets:
              CRM_DSN:
                plugin: env_secret
                args:
                  name: CRM_DSN
              WAREHOUSE:
                plugin: env_secret
                args:
                  name: WAREHOUSE_DSN
            ---
            concurrency: 2
            pipelines:
              customers_daily:
                type: ETL
                phases:
                  extract:
                    steps:
                      - id: read_rows
                        plugin: read_rows
                        args:
                          path: customers.csv
            """)
    )
    assert (
        "        merge:\n          id: join\n          plugin: join_rows\n"
        "          args:\n            'on': customer_id\n" in text
    )
    assert "    needs:\n      - customers_daily\n" in text
    assert load_project(text, registry=test_registry) == spec
    assert dump_project(load_project(text)) == text


def test_step_options_are_written_only_when_not_default() -> None:
    text = f"pipelines:\n  a:\n    type: ETL\n{ETL_BODY}".replace(
        "table: t}", "table: t}, timeout: 2.5, retries: 3"
    )
    dumped = dump_project(load_project(text))
    assert "            timeout: 2.5\n            retries: 3\n" in dumped
    assert "retry_backoff" not in dumped and dumped.count("timeout") == 1


@pytest.mark.parametrize(
    "text",
    ["on", "off", "yes", "No", "y", "N", "true", "null", "~", "", "12", "0o17", "0x1F", "1_000", "1e3",
     ".inf", "2001-12-14", "1:20", "<<", "="],
)  # fmt: skip
def test_ambiguous_strings_are_quoted(text: str) -> None:
    assert needs_quotes(text)
    spec = load_project(f"variables: {{v: '{text}'}}\n---\npipelines:\n  a:\n    type: ETL\n{ETL_BODY}")
    dumped = dump_project(spec)
    assert f"  v: '{text}'\n" in dumped
    assert load_project(dumped).variables == {"v": text}


@pytest.mark.parametrize("text", ["orders.csv", "amount > 10", "${{ variables.X }}", "Ünïcode", "a b"])
def test_plain_strings_stay_plain(text: str) -> None:
    assert not needs_quotes(text)


def test_dump_pipeline_keeps_only_what_the_pipeline_uses() -> None:
    text = (
        """\
variables:
  ORDERS: orders.csv
  DSN: "${{ secrets.WAREHOUSE }}"
  UNUSED: 1
---
secrets:
  WAREHOUSE: {args: {name: W}}
  OTHER: {args: {name: O}}
---
concurrency: 4
pipelines:
  first:
    type: ETL
"""
        + ETL_BODY
        + """\
  orders:
    type: ETL
    needs: first
    phases:
      extract: {steps: [{plugin: read_rows, args: {path: "${{ variables.ORDERS }}"}}]}
      load: {steps: [{plugin: write_rows, args: {table: t, dsn: "${{ variables.DSN }}"}}]}
"""
    )
    spec = load_project(text)
    alone = load_project(dump_pipeline(spec, "orders"))
    assert list(alone.pipelines) == ["orders"]
    assert alone.pipelines["orders"].needs == []
    assert alone.variables == {"ORDERS": "orders.csv", "DSN": "${{ secrets.WAREHOUSE }}"}
    assert list(alone.secrets) == ["WAREHOUSE"]
    assert alone.concurrency == 4
    assert spec.pipelines["orders"].needs == ["first"]  # the original is untouched
    with pytest.raises(KeyError, match="no pipeline named 'nope'"):
        dump_pipeline(spec, "nope")


# --- round trip: load(dump(spec)) == spec ----------------------------------------------------------------

TRICKY = [
    "on", "off", "yes", "no", "y", "n", "Y", "N", "true", "False", "null", "~", "", "12", "0o17", "0x1F",
    "1_000", "1e3", "-.inf", ".nan", "2001-12-14", "1:20", "<<", "=", "- x", "# c", "a: b", "'q'", '"d"',
    " lead", "trail ", "\ttab", "line1\nline2", "line\n", "\n", "  indented\nx", "a\r\nb", "\u2028",
    "x\x85y", "\ufeffbom", "!tag", "&anchor", "*alias", "%dir", "@at", "`tick", "{a: 1}", "[1, 2]", "|", ">",
    "?", "${{ env.HOME }}", "--- x", "...", "a #b", "é", "日本語", "\x00", "\x07", "last line  \n",
]  # fmt: skip
_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_ref_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True)
_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20).filter(
    lambda t: "${{" not in t
) | st.sampled_from(TRICKY)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | _texts
)
_positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)


class _Ref(int):
    """A placeholder leaf, replaced after drawing by a reference to a variable or secret of the spec."""


_data = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_names, kids, max_size=3),
    max_leaves=5,
)
_args_data = st.recursive(
    _scalars | st.integers(0, 9).map(_Ref),
    lambda kids: st.lists(kids, max_size=2) | st.dictionaries(_names, kids, max_size=2),
    max_leaves=4,
)
_step = st.fixed_dictionaries(
    {"plugin": _names},
    optional={
        "id": _names,
        "args": st.dictionaries(_names, _args_data, max_size=2),
        "timeout": st.none() | _positive,
        "retries": st.integers(0, 100),
        "retry_backoff": _positive | st.just(0.0),
    },
)
_secret = st.fixed_dictionaries(
    {},
    optional={"plugin": _names, "id": st.none() | _texts, "args": st.dictionaries(_names, _data, max_size=2)},
)


def _with_refs(value: Any, refs: list[str]) -> Any:
    if isinstance(value, _Ref):
        return refs[value % len(refs)] if refs else int(value)
    if isinstance(value, dict):
        return {k: _with_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_refs(v, refs) for v in value]
    return value


def _unique_ids(phase: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    for key in ("pre", "steps", "merge", "post"):
        for step in [phase[key]] if key == "merge" and key in phase else phase.get(key, []):
            if step.get("id") in seen:  # explicit ids must be unique within a phase
                del step["id"]
            seen.add(step.get("id", ""))
    return phase


@st.composite
def project_specs(draw: st.DrawFn) -> ProjectSpec:
    """Random valid specs: every type, optional phases and options, tricky text, nested args, references."""
    variables = draw(st.dictionaries(_ref_names, _data, max_size=2))
    secrets = draw(st.dictionaries(_ref_names, _secret, max_size=2))
    refs = [f"${{{{ variables.{v} }}}}" for v in variables] + [
        f"x ${{{{ secrets.{s}.key }}}} y" for s in secrets
    ]

    def steps(min_size: int, max_size: int) -> list[dict[str, Any]]:
        return _with_refs(draw(st.lists(_step, min_size=min_size, max_size=max_size)), refs)  # type: ignore[no-any-return]

    pipelines: dict[str, Any] = {}
    for name in draw(st.lists(_names, min_size=1, max_size=3, unique=True)):
        type_ = draw(st.sampled_from(["ETL", "ELT", "ETLT"]))
        extract: dict[str, Any] = {"steps": steps(1, 3), "pre": steps(0, 1), "post": steps(0, 1)}
        if len(extract["steps"]) > 1:
            extract["merge"] = steps(1, 1)[0]
        phases: dict[str, Any] = {"extract": extract, "load": {"steps": steps(1, 2), "pre": steps(0, 1)}}
        if type_ != "ELT" and draw(st.booleans()):
            phases["transform"] = {"steps": steps(0, 2)}
        if type_ != "ETL":
            phases["transform_at_load"] = {"steps": steps(1, 2)}
        needs = draw(st.lists(st.sampled_from(list(pipelines)), max_size=2)) if pipelines else []
        pipelines[name] = {
            "type": type_,
            "description": draw(st.none() | _texts),
            "needs": needs,
            "phases": {phase: _unique_ids(body) for phase, body in phases.items()},
        }
    plugins = draw(st.none() | st.dictionaries(_names, _data, max_size=2))
    return ProjectSpec.model_validate({
        "variables": variables, "secrets": secrets, "concurrency": draw(st.integers(1, 1000)),
        "pipelines": pipelines, "plugins": plugins,
    })  # fmt: skip


def tricky_spec() -> ProjectSpec:
    pipeline = yaml.safe_load(f"type: ETL\n{textwrap.dedent(ETL_BODY)}")
    return ProjectSpec.model_validate(
        {
            "variables": {"V": TRICKY, **{text or "empty": text for text in TRICKY}},
            "pipelines": {text: {**pipeline, "description": text} for text in TRICKY if "${{" not in text},
        }
    )


def test_tricky_text_round_trips_as_keys_values_and_names() -> None:
    spec = tricky_spec()
    text = dump_project(spec)
    assert load_project(text) == spec
    assert dump_project(load_project(text)) == text


def test_a_yaml_1_1_reader_reads_a_dump_as_we_do() -> None:
    text = dump_project(tricky_spec())
    assert list(yaml.safe_load_all(text)) == list(yaml.load_all(text, Loader=CoreLoader))  # noqa: S506


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(project_specs())
def test_load_of_dump_is_the_same_spec(spec: ProjectSpec) -> None:
    text = dump_project(spec)
    loaded = load_project(text)
    assert loaded == spec
    assert dump_project(loaded) == text


# --- pipeline-flow's own parser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pipeline_flow_python() -> Path:
    """pipeline-flow 1.0.8's own interpreter (its venv is created on first use, as the bench does)."""
    from bench.pipeline_flow_env import BaselineUnavailable, ensure_venv

    try:
        return ensure_venv()
    except (BaselineUnavailable, OSError) as exc:
        pytest.skip(f"pipeline-flow {exc}")


PIPELINE_FLOW_READ = """\
import json, sys
from pipeline_flow.core.parsers.yaml_parser import YamlParser
print(json.dumps([YamlParser(open(p, encoding="utf-8").read()).yaml_body for p in sys.argv[1:]]))
"""


def test_pipeline_flow_reads_a_dumped_file_as_we_do(tmp_path: Path, pipeline_flow_python: Path) -> None:
    text = """\
variables: {ORDERS: orders.csv, N: 3, TABLE: {name: t, on: 1}}
---
pipelines:
  'yes':
    type: ETL
    description: '0o17'
    phases:
      extract:
        steps: [{plugin: read_rows, args: {path: "${{ variables.ORDERS }}", limit: "${{ variables.N }}"}}]
      load:
        steps:
          - plugin: write_rows
            args:
              table: "${{ variables.TABLE }}"
              on: 'off'
              n: [y, n, '~', 1e3]
              sql: "select 1\\nfrom t\\n"
            timeout: 2.5
    needs: []
"""
    spec = load_project(text)
    files = {
        tmp_path / "refs.yaml": dump_project(spec),
        tmp_path / "tricky.yaml": dump_project(tricky_spec()),
    }
    for path, dumped in files.items():
        path.write_text(dumped, encoding="utf-8")
    run = subprocess.run(
        [str(pipeline_flow_python), "-c", PIPELINE_FLOW_READ, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    ours = [list(yaml.load_all(dumped, Loader=CoreLoader))[-1] for dumped in files.values()]  # noqa: S506
    assert theirs[0] == substitute_variables(ours[0], spec.variables)  # variables substituted at load there
    assert theirs[0]["pipelines"]["yes"]["phases"]["load"]["steps"][0]["args"]["on"] == "off"
    assert theirs[1] == ours[1]  # ambiguous text as pipeline names and descriptions
