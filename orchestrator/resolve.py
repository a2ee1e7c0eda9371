"""Run-time resolution of ``${{ variables.X }}``, ``${{ env.X }}``, ``${{ secrets.X[.key] }}`` and
``${{ run.date | datetime | id }}`` references.

A spec always holds references as text; they are resolved only when a step is about to run, and resolved
secret values are remembered by a ``Redactor`` so they never reach logs, events or error messages.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, quote_plus

from orchestrator.parameters import RUN_CONTEXT, RUN_FIELDS
from orchestrator.yamlsafe import parse_scalar

if TYPE_CHECKING:
    from orchestrator.plugins.registry import PluginRegistry
    from orchestrator.spec import ProjectSpec, SecretSpec

KINDS = ("variables", "env", "secrets", "run")
REFERENCE_RE = re.compile(r"\$\{\{([^{}]*)\}\}")
_BODY_RE = re.compile(r"(?P<kind>[A-Za-z_]+)\.(?P<name>[\w-]+)(?:\.(?P<key>[\w.-]+))?")
_MAX_DEPTH = 10


class ResolveError(ValueError):
    """A reference that cannot be resolved: an undefined variable, unset env variable or unknown secret."""


@dataclass(frozen=True)
class Reference:
    """One parsed ``${{ kind.name[.key] }}`` reference; ``text`` is exactly as written."""

    kind: str
    name: str
    key: str | None
    text: str


def parse_reference(text: str) -> Reference:
    """Parse one ``${{ ... }}`` text; raises ResolveError saying how a valid reference looks."""
    body = text[3:-2].strip()
    match = _BODY_RE.fullmatch(body)
    if not match or match["kind"] not in KINDS:
        raise ResolveError(
            f"'{text}' is not a valid reference; use ${{{{ variables.NAME }}}}, ${{{{ env.NAME }}}} "
            "or ${{ secrets.NAME }}"
        )
    if match["kind"] == "run" and (match["name"] not in RUN_FIELDS or match["key"]):
        raise ResolveError(
            f"'{text}' is not a valid reference: a run has {', '.join('run.' + f for f in RUN_FIELDS)}"
        )
    if match["key"] and match["kind"] != "secrets":
        raise ResolveError(
            f"'{text}' is not a valid reference: only secrets have sub-keys (secrets.NAME.key)"
        )
    return Reference(match["kind"], match["name"], match["key"], text)


def iter_references(text: str) -> Iterator[Reference | ResolveError]:
    """Every reference in ``text``, or the error explaining why one is malformed."""
    for match in REFERENCE_RE.finditer(text):
        try:
            yield parse_reference(match.group(0))
        except ResolveError as exc:
            yield exc


def has_reference(value: Any, kinds: tuple[str, ...] = KINDS) -> bool:
    """True when ``value`` (recursing into dicts and lists) holds a reference of one of ``kinds``."""
    if isinstance(value, str):
        return any(isinstance(r, Reference) and r.kind in kinds for r in iter_references(value))
    if isinstance(value, Mapping):
        return any(has_reference(v, kinds) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_reference(v, kinds) for v in value)
    return False


class SecretResolver(Protocol):
    """Returns the value of secret ``name`` (or of ``key_path`` inside it, for structured secrets)."""

    def __call__(self, name: str, key_path: str | None) -> str: ...


class Redactor:
    """Remembers secret values and replaces them with ``***`` in any text (logs, events, errors)."""

    MASK = "***"

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Remember a secret value, with the forms it may leak in: its lines, its URL-encoded and base64
        forms, and every fragment of 4 or more characters between punctuation (``hunter2`` of
        ``hunter2-super-secret`` would otherwise show in "column 'hunter2' not found")."""
        parts = {p for p in secret_forms(value) if p}
        with self._lock:
            new = parts - self._values
            if new:
                self._values |= new
                ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial masks
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __bool__(self) -> bool:
        return bool(self._values)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***``."""
        pattern = self._pattern
        return pattern.sub(self.MASK, text) if pattern is not None else text

    __call__ = redact

    def redact_value(self, value: Any) -> Any:
        """Redact every string inside ``value`` (dicts and lists too)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value


#: a fragment of a secret shorter than this is not masked on its own (it would mask common words)
MIN_FRAGMENT = 4
_PUNCTUATION = re.compile(r"[\W_]+")


def secret_forms(value: str) -> set[str]:
    """The texts a redactor masks for one secret value."""
    if not value:
        return set()
    forms = {value, *(line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_FRAGMENT)}
    forms |= {quote(value, safe=""), quote(value), quote_plus(value)}
    raw = value.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    forms |= {part for part in _PUNCTUATION.split(value) if len(part) >= MIN_FRAGMENT}
    return forms


def as_text(value: Any) -> str:
    """How a variable's value reads when interpolated inside a longer string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class _Context:
    variables: Mapping[str, Any]
    env: Mapping[str, str] | None  # None: leave env references as they are
    secrets: SecretResolver | None
    redactor: Redactor | None
    resolve_secrets: bool = True
    depth: int = 0
    #: set for a field that may not hold secrets: the error a secret reference raises there
    secrets_refused: str | None = None


def resolve_value(
    value: Any,
    *,
    variables: Mapping[str, Any],
    env: Mapping[str, str],
    secrets: SecretResolver | None,
    redactor: Redactor | None = None,
) -> Any:
    """Resolve every reference inside ``value``; a string that is exactly one variable keeps its type."""
    return _resolve(value, _Context(variables, env, secrets, redactor))


def resolve_args(
    args: Mapping[str, Any],
    *,
    secret_fields: Collection[str],
    plugin: str,
    variables: Mapping[str, Any],
    env: Mapping[str, str],
    secrets: SecretResolver | None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """Resolve a step's arguments; ``${{ secrets.X }}`` only in ``secret_fields`` (directly or through a
    variable), anywhere else a ResolveError naming the field."""
    resolved = {}
    for key, value in args.items():
        refused = None if key in secret_fields else secret_refused_message(plugin, key, secret_fields)
        resolved[key] = _resolve(value, _Context(variables, env, secrets, redactor, secrets_refused=refused))
    return resolved


def secret_refused_message(plugin: str, field: str, secret_fields: Collection[str]) -> str:
    """Why a secret may not go into ``field``, and where it may."""
    where = (
        f"its fields {', '.join(sorted(secret_fields))} accept secrets"
        if secret_fields
        else "it has no field that accepts secrets"
    )
    return (
        f"field '{field}' of plugin '{plugin}' does not accept secrets ({where}); "
        "a secret may not go into expressions, queries, paths or names, where it could be read back"
    )


def substitute_variables(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace only defined variables (env, secret and undefined references stay as text): for validation."""
    return _resolve(value, _Context(variables, None, None, None, resolve_secrets=False))


def _resolve(value: Any, ctx: _Context) -> Any:
    if isinstance(value, str):
        return _resolve_str(value, ctx)
    if isinstance(value, Mapping):
        return {k: _resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, ctx) for v in value]
    return value


def _resolve_str(text: str, ctx: _Context) -> Any:
    if "${{" not in text:
        return text
    whole = REFERENCE_RE.fullmatch(text)
    if whole:
        ref = parse_reference(text)
        return _lookup(ref, ctx)

    def replace(match: re.Match[str]) -> str:
        ref = parse_reference(match.group(0))
        return as_text(_lookup(ref, ctx))

    return REFERENCE_RE.sub(replace, text)


def _lookup(ref: Reference, ctx: _Context) -> Any:
    if ref.kind == "variables":
        if ref.name not in ctx.variables:
            if not ctx.resolve_secrets:  # substituting for validation: undefined names are reported elsewhere
                return ref.text
            raise ResolveError(f"variable '{ref.name}' is not defined")
        if ctx.depth >= _MAX_DEPTH:
            raise ResolveError(f"variable '{ref.name}' refers to itself through other variables")
        inner = _Context(**{**ctx.__dict__, "depth": ctx.depth + 1})
        return _resolve(ctx.variables[ref.name], inner)
    if ref.kind == "run":
        if not ctx.resolve_secrets:  # substituting for validation: known only when the run starts
            return ref.text
        context = ctx.variables.get(RUN_CONTEXT)
        if not isinstance(context, Mapping) or ref.name not in context:
            raise ResolveError(f"'{ref.text}' has no value: this run was started without a run context")
        return context[ref.name]
    if ref.kind == "env":
        if ctx.env is None:
            return ref.text
        if ref.name not in ctx.env:
            raise ResolveError(f"environment variable '{ref.name}' is not set")
        return ctx.env[ref.name]
    if not ctx.resolve_secrets:
        return ref.text
    if ctx.secrets_refused is not None:
        raise ResolveError(f"secret '{ref.name}': {ctx.secrets_refused}")
    if ctx.secrets is None:
        raise ResolveError(f"secret '{ref.name}' cannot be resolved: no secret provider is configured")
    secret = ctx.secrets(ref.name, ref.key)
    if ctx.redactor is not None:
        ctx.redactor.add(secret)
    return secret


def env_secret_resolver(
    spec_secrets: Mapping[str, SecretSpec],
    env: Mapping[str, str],
    *,
    registry: PluginRegistry | None = None,
) -> SecretResolver:
    """The CLI's default resolver: ``env_secret`` secrets read ``env``; other providers use ``registry``."""
    cache: dict[str, str] = {}

    def fetch(name: str) -> str:
        spec = spec_secrets.get(name)
        if spec is None:
            raise ResolveError(f"secret '{name}' is not declared in the secrets document")
        if spec.plugin == "env_secret":
            var = str(spec.args.get("name", name))
            if var not in env:
                raise ResolveError(f"secret '{name}' reads environment variable '{var}', which is not set")
            return env[var]
        if registry is None:
            raise ResolveError(
                f"secret '{name}' uses plugin '{spec.plugin}', but no plugin registry was given"
            )
        provider: Callable[[], str] = registry.get(spec.plugin)(spec.args).resolve  # type: ignore[attr-defined]
        return str(provider())

    def resolve(name: str, key_path: str | None) -> str:
        if name not in cache:
            cache[name] = fetch(name)
        return secret_key(name, cache[name], key_path)

    return resolve


def secret_key(name: str, value: str, key_path: str | None) -> str:
    """``value`` itself, or the item at ``key_path`` (dotted) inside a JSON-object secret."""
    if key_path is None:
        return value
    try:
        item: Any = json.loads(value)
    except ValueError:
        raise ResolveError(f"secret '{name}' is not a JSON object, so it has no key '{key_path}'") from None
    for part in key_path.split("."):
        if not isinstance(item, Mapping) or part not in item:
            raise ResolveError(f"secret '{name}' has no key '{key_path}'")
        item = item[part]
    return item if isinstance(item, str) else json.dumps(item)


def apply_variable_overrides(spec: ProjectSpec, overrides: Mapping[str, str]) -> ProjectSpec:
    """A copy of ``spec`` whose variables are updated from ``--var KEY=VALUE`` pairs (YAML 1.2 scalars)."""
    if not overrides:
        return spec
    variables = {**spec.variables, **{key: parse_scalar(value) for key, value in overrides.items()}}
    return spec.model_copy(update={"variables": variables}, deep=True)
