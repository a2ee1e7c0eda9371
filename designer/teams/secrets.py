"""Team secrets: write-only storage (set, replace, delete) and resolution inside the worker at run time.

Values exist in clear only in two places: the request that sets one (encrypted before it is saved) and the
worker's resolver while a run executes (each resolved value is handed to the run's redactor so it never
reaches a log line, an event, an error message or a page).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from designer.teams import crypto
from designer.teams.models import Secret, Team, identifier_validator
from orchestrator import ResolveError, secret_key

SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)(?:\.[\w.-]+)?\s*\}\}")
MAX_SECRET_LENGTH = 64 * 1024


class MissingSecretError(ResolveError):
    """A ``${{ secrets.X }}`` reference the team has no secret for (message names it, never a value)."""


def validate_secret(name: str, value: str) -> None:
    """Raise ValidationError with a user-facing message when ``name`` or ``value`` cannot be stored."""
    identifier_validator(name)
    if value == "":
        raise ValidationError("The value is empty: paste the secret's value (it will not be shown again).")
    if len(value) > MAX_SECRET_LENGTH:
        raise ValidationError(f"The value is longer than {MAX_SECRET_LENGTH} characters.")


@transaction.atomic
def set_secret(team: Team, name: str, value: str, user: Any = None) -> tuple[Secret, bool]:
    """Create or replace the team's secret ``name``; return ``(secret, created)``."""
    validate_secret(name, value)
    ciphertext, key_id = crypto.encrypt(value)
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    secret = Secret.objects.select_for_update().filter(team=team, name=name).first()
    if secret is None:
        try:
            with transaction.atomic():  # a savepoint: another request may create the same name meanwhile
                secret = Secret.objects.create(
                    team=team,
                    name=name,
                    ciphertext=ciphertext,
                    key_id=key_id,
                    created_by=actor,
                    updated_by=actor,
                )
            return secret, True
        except IntegrityError:  # it did: replace its value instead
            secret = Secret.objects.select_for_update().get(team=team, name=name)
    secret.ciphertext, secret.key_id, secret.updated_by = ciphertext, key_id, actor
    secret.save(update_fields=["ciphertext", "key_id", "updated_by", "updated_at"])
    return secret, False


def delete_secret(team: Team, name: str) -> bool:
    """Delete the team's secret ``name``; False when there was none."""
    deleted, _ = Secret.objects.filter(team=team, name=name).delete()
    return bool(deleted)


def secret_names(team: Team) -> list[str]:
    """Names of the team's secrets, sorted (never their values)."""
    return list(Secret.objects.filter(team=team).order_by("name").values_list("name", flat=True))


def secret_references(data: Any) -> set[str]:
    """Every NAME of ``${{ secrets.NAME }}`` found anywhere in a spec (pydantic model, dict, list or str)."""
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.update(SECRET_REF.findall(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


class TeamSecretResolver:
    """The engine's ``orchestrator.resolve.SecretResolver`` ``(name, key_path) -> str`` for one team.

    Built in the worker before the run starts (one query: the ciphertexts), it decrypts lazily, on the
    engine's call, without touching the database (so it is safe on the event loop). Each value is passed
    to ``on_resolve`` (the run's redactor) before it is returned.
    """

    def __init__(
        self,
        team: Team,
        on_resolve: Callable[[str], Any] | None = None,
    ) -> None:
        self.team_name = team.name
        self._ciphertexts = dict(Secret.objects.filter(team=team).values_list("name", "ciphertext"))
        self._on_resolve = on_resolve
        self._cache: dict[str, str] = {}

    def names(self) -> list[str]:
        """Names this resolver can resolve."""
        return sorted(self._ciphertexts)

    def __call__(self, name: str, key_path: str | None = None) -> str:
        """Decrypt the team secret ``name`` (or the item at dotted ``key_path`` inside a JSON secret)."""
        if name not in self._cache:
            ciphertext = self._ciphertexts.get(name)
            if ciphertext is None:
                raise MissingSecretError(
                    f"secret '{name}' is not set in team '{self.team_name}': "
                    "an owner can set it under Team settings > Secrets"
                )
            try:
                value = crypto.decrypt(ciphertext)
            except crypto.SecretDecryptionError as exc:
                raise ResolveError(f"secret '{name}' cannot be decrypted: {exc}") from None
            if self._on_resolve is not None:
                self._on_resolve(value)
            self._cache[name] = value
        return secret_key(name, self._cache[name], key_path)

    def __repr__(self) -> str:
        return f"<TeamSecretResolver team={self.team_name!r} names={self.names()!r}>"


def _redactor_hook(redactor: Any) -> Callable[[str], Any] | None:
    if redactor is None:
        return None
    hook: Callable[[str], Any] = (
        redactor if callable(redactor) and not hasattr(redactor, "add") else redactor.add
    )
    return hook


def team_secret_resolver(team: Team, redactor: Any = None) -> TeamSecretResolver:
    """The engine's SecretResolver for ``team``; resolved values are fed to ``redactor`` (``.add(value)``)."""
    return TeamSecretResolver(team, on_resolve=_redactor_hook(redactor))


#: argument names that carry a secret's value rather than where to find it
ENV = "env_secret"
VALUE_KEYS = frozenset({"value", "secret", "password", "passwd", "pwd", "token", "key", "dsn", "url"})


def _as_dict(declaration: Any) -> Any:
    return declaration.model_dump(mode="json") if hasattr(declaration, "model_dump") else declaration


def _declared_value(declaration: Any) -> bool:
    """True when a ``secrets:`` entry of a file carries a literal value instead of a provider's arguments."""
    declaration = _as_dict(declaration)
    if declaration is None:
        return False
    if not isinstance(declaration, Mapping):
        return True  # ``NAME: value`` written inline
    args = declaration.get("args") or {}
    return "value" in declaration or any(str(k).lower() in VALUE_KEYS for k in args)


def sanitize_declaration(declaration: Any) -> dict[str, Any]:
    """One ``secrets:`` entry without any value: its plugin and the arguments that say where to look."""
    data = _as_dict(declaration)
    if not isinstance(data, Mapping):
        return {"plugin": ENV}
    clean: dict[str, Any] = {k: v for k, v in data.items() if k not in ("args", "value") and v is not None}
    clean.setdefault("plugin", ENV)
    args = {k: v for k, v in (data.get("args") or {}).items() if str(k).lower() not in VALUE_KEYS}
    if args:
        clean["args"] = args
    return clean


def sanitize_secret_declarations(declared: Mapping[str, Any]) -> dict[str, Any]:
    """The file's ``secrets:`` document without any value: what may be stored (e.g. in Project.secrets)."""
    return {name: sanitize_declaration(declaration) for name, declaration in declared.items()}


def secret_import_report(spec: Any, team: Team) -> list[str]:
    """Messages for the user importing ``spec`` (a ProjectSpec or its dict) into ``team``.

    The file's ``secrets:`` names map to the team's secrets of the same name; values found in the file are
    never stored: every such value, every missing secret and every ignored declaration gets a message.
    """
    data = spec.model_dump(mode="json") if hasattr(spec, "model_dump") else dict(spec or {})
    declared: Mapping[str, Any] = data.get("secrets") or {}
    referenced = secret_references({k: v for k, v in data.items() if k != "secrets"})
    existing = set(secret_names(team))
    messages: list[str] = []
    for name in sorted(declared):
        data = _as_dict(declared[name])
        if _declared_value(data):
            messages.append(
                f"The file holds a value for secret '{name}': it was NOT stored. "
                "An owner can set it under Team settings > Secrets."
            )
        elif isinstance(data, Mapping) and data.get("plugin") not in (None, ENV):
            messages.append(
                f"Secret '{name}' uses plugin '{data['plugin']}' in the file: in Pipedeck, runs read the "
                f"team secret '{name}' instead (the declaration is kept for export)."
            )
    for name in sorted(set(declared) | referenced):
        if name in existing:
            messages.append(f"Secret '{name}' will use the team secret '{name}'.")
        else:
            messages.append(
                f"Secret '{name}' is not set in team '{team.name}': runs that use it will fail until an "
                "owner sets it under Team settings > Secrets."
            )
    return messages


def rotate_all(batch: Iterable[Secret] | None = None) -> tuple[int, int]:
    """Re-encrypt secrets with the primary key; return ``(re-encrypted, already current)``."""
    primary = crypto.primary_key_id()
    changed = current = 0
    secrets = batch if batch is not None else list(Secret.objects.order_by("pk"))
    for secret in secrets:
        ciphertext, key_id = crypto.reencrypt(secret.ciphertext)
        if secret.key_id == primary and key_id == primary:
            current += 1
        else:
            changed += 1
        # Always rewritten: Fernet tokens carry a timestamp, and a key id may be stale after a key change.
        Secret.objects.filter(pk=secret.pk).update(ciphertext=ciphertext, key_id=key_id)
    return changed, current
