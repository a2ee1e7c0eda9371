"""Run-time resolution of references, secret redaction, the default secret resolver, --var overrides."""

from __future__ import annotations

import pytest

from orchestrator.plugins.base import SecretProvider
from orchestrator.plugins.registry import PluginRegistry
from orchestrator.resolve import (
    Redactor,
    ResolveError,
    apply_variable_overrides,
    env_secret_resolver,
    has_reference,
    resolve_value,
    substitute_variables,
)
from orchestrator.spec import ProjectSpec, SecretSpec

VARIABLES = {"N": 3, "RATE": 0.5, "ON": True, "NAME": "orders", "COLS": ["a", "b"], "NOTHING": None}


def resolve(value, env=None, secrets=None, redactor=None):  # type: ignore[no-untyped-def]
    return resolve_value(value, variables=VARIABLES, env=env or {}, secrets=secrets, redactor=redactor)


def fake_secrets(name: str, key_path: str | None) -> str:
    return f"<{name}{'.' + key_path if key_path else ''}>"


def test_a_whole_value_variable_keeps_its_type() -> None:
    assert resolve("${{ variables.N }}") == 3
    assert resolve("${{variables.COLS}}") == ["a", "b"]
    assert resolve("${{ variables.ON }}") is True
    assert resolve("${{ variables.NOTHING }}") is None


def test_a_variable_inside_text_is_interpolated() -> None:
    assert resolve("top ${{ variables.N }} of ${{ variables.NAME }}") == "top 3 of orders"
    assert resolve("flag=${{ variables.ON }} rate=${{ variables.RATE }}") == "flag=true rate=0.5"
    assert resolve("cols=${{ variables.COLS }}") == 'cols=["a", "b"]'


def test_dicts_and_lists_are_resolved_recursively_and_other_values_untouched() -> None:
    value = {"a": ["${{ variables.N }}", {"b": "x${{ env.HOME }}"}], "c": 1.5, "d": None, "e": "plain"}
    assert resolve(value, env={"HOME": "/h"}) == {"a": [3, {"b": "x/h"}], "c": 1.5, "d": None, "e": "plain"}


def test_env_references_read_the_given_environment() -> None:
    assert resolve("${{ env.PORT }}", env={"PORT": "5432"}) == "5432"
    with pytest.raises(ResolveError, match="^environment variable 'PORT' is not set$"):
        resolve("${{ env.PORT }}")


def test_undefined_variables_and_bad_references_are_clear_errors() -> None:
    with pytest.raises(ResolveError, match="^variable 'MISSING' is not defined$"):
        resolve("${{ variables.MISSING }}")
    with pytest.raises(ResolveError) as info:
        resolve("${{ vars.N }}")
    assert str(info.value) == (
        "'${{ vars.N }}' is not a valid reference; "
        "use ${{ variables.NAME }}, ${{ env.NAME }} or ${{ secrets.NAME }}"
    )
    with pytest.raises(ResolveError, match="only secrets have sub-keys"):
        resolve("${{ variables.N.x }}")


def test_variables_may_hold_references_but_not_loop() -> None:
    variables = {"DSN": "postgres://${{ env.HOST }}/db", "A": "${{ variables.B }}", "B": "${{ variables.A }}"}
    assert resolve_value("${{ variables.DSN }}", variables=variables, env={"HOST": "h"}, secrets=None) == (
        "postgres://h/db"
    )
    with pytest.raises(ResolveError, match="refers to itself"):
        resolve_value("${{ variables.A }}", variables=variables, env={}, secrets=None)


def test_secrets_go_through_the_resolver_and_are_remembered_for_redaction() -> None:
    redactor = Redactor()
    assert resolve("${{ secrets.DSN }}", secrets=fake_secrets, redactor=redactor) == "<DSN>"
    assert resolve("u=${{ secrets.CREDS.user }}", secrets=fake_secrets, redactor=redactor) == "u=<CREDS.user>"
    assert redactor.redact("connect <DSN> as <CREDS.user>") == "connect *** as ***"
    with pytest.raises(ResolveError, match="no secret provider is configured"):
        resolve("${{ secrets.DSN }}")


def test_substitute_variables_leaves_env_and_secrets_as_text() -> None:
    value = {"n": "${{ variables.N }}", "dsn": "${{ secrets.DSN }}", "home": "${{ env.HOME }}/x"}
    assert substitute_variables(value, VARIABLES) == {
        "n": 3,
        "dsn": "${{ secrets.DSN }}",
        "home": "${{ env.HOME }}/x",
    }


def test_has_reference_filters_by_kind() -> None:
    assert has_reference({"a": ["x ${{ secrets.S }}"]}, ("secrets",))
    assert not has_reference({"a": ["x ${{ variables.S }}"]}, ("secrets", "env"))
    assert not has_reference({"a": 1})


def test_redactor_masks_longest_values_first_and_multi_line_secrets_line_by_line() -> None:
    redactor = Redactor(["abc", "abcdef"])
    assert redactor("xx abcdef yy abc") == "xx *** yy ***"
    redactor.add("-----BEGIN KEY-----\nMIIEabcd\n-----END KEY-----")
    assert redactor("line: MIIEabcd") == "line: ***"
    assert redactor.redact_value({"a": ["abc", 1], "b": "ok"}) == {"a": ["***", 1], "b": "ok"}
    assert Redactor()("abc") == "abc"
    assert not Redactor([""])


def test_env_secret_resolver_reads_the_named_environment_variable() -> None:
    secrets = {"DSN": SecretSpec(args={"name": "PG_DSN"}), "TOKEN": SecretSpec(), "JSON": SecretSpec()}
    env = {"PG_DSN": "postgres://x", "TOKEN": "t0k", "JSON": '{"user": "u", "db": {"port": 5432}}'}
    resolver = env_secret_resolver(secrets, env)
    assert resolver("DSN", None) == "postgres://x"
    assert resolver("TOKEN", None) == "t0k"  # no args.name: the secret's own name
    assert resolver("JSON", "user") == "u"
    assert resolver("JSON", "db.port") == "5432"
    with pytest.raises(ResolveError, match="^secret 'JSON' has no key 'password'$"):
        resolver("JSON", "password")
    with pytest.raises(ResolveError, match="^secret 'TOKEN' is not a JSON object, so it has no key 'x'$"):
        resolver("TOKEN", "x")
    with pytest.raises(ResolveError, match="^secret 'NOPE' is not declared in the secrets document$"):
        resolver("NOPE", None)
    with pytest.raises(
        ResolveError, match="^secret 'DSN' reads environment variable 'PG_DSN', which is not set$"
    ):
        env_secret_resolver(secrets, {})("DSN", None)


def test_env_secret_resolver_uses_other_providers_from_the_registry() -> None:
    class Vault(SecretProvider):
        name = "fake_vault"
        calls = 0

        def resolve(self) -> str:
            Vault.calls += 1
            return "from-vault"

    registry = PluginRegistry.empty()
    registry.register(Vault)
    resolver = env_secret_resolver({"V": SecretSpec(plugin="fake_vault")}, {}, registry=registry)
    assert resolver("V", None) == "from-vault"
    assert resolver("V", None) == "from-vault"
    assert Vault.calls == 1  # resolved once per resolver


def test_variable_overrides_are_parsed_as_yaml_1_2_scalars() -> None:
    spec = ProjectSpec.model_validate(
        {
            "variables": {"N": 1, "MODE": "full"},
            "pipelines": {
                "a": {
                    "type": "ETL",
                    "phases": {"extract": {"steps": [{"plugin": "e"}]}, "load": {"steps": [{"plugin": "l"}]}},
                }
            },
        }
    )
    updated = apply_variable_overrides(
        spec,
        {"N": "3", "MODE": "on", "FLAG": "true", "RATE": "0.5", "TEXT": "a: b", "EMPTY": "", "OCT": "0o10"},
    )
    assert updated.variables == {
        "N": 3, "MODE": "on", "FLAG": True, "RATE": 0.5, "TEXT": "a: b", "EMPTY": "", "OCT": 8,
    }  # fmt: skip
    assert spec.variables == {"N": 1, "MODE": "full"}
    assert apply_variable_overrides(spec, {}) is spec
