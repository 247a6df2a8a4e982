"""Audit events: one structured log record per security-relevant event, and hooks.

Every event has a stable name from :data:`EVENTS` (documented in ``docs/audit.md``;
a release may add names, never rename one) and a few fields naming *who* and
*which credential*: user, key id, token id, client id. Field names come from the
fixed allowlist :data:`FIELDS`, so no caller can put a password, key or token
into an event by accident: there is no field to put it in, and an unknown field
is a ``ValueError``, not a silently logged secret.

Each event is logged once on the ``authmw.audit`` logger, with the event as a
dict in the record's ``audit`` attribute for JSON formatters, then handed to
every hook (:meth:`Audit.add_hook`) so an application can ship it elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

__all__ = ["EVENTS", "FIELDS", "MAX_LENGTH", "Audit", "AuditEvent", "Hook", "Value"]

#: Every event name authmw emits, stable across releases (documented in docs/audit.md).
EVENTS: frozenset[str] = frozenset(
    {
        "login.succeeded",
        "login.failed",
        "login.throttled",
        "token.issued",
        "token.refreshed",
        "token.revoked",
        "token.introspected",
        # A used refresh token came back: its family is revoked.
        "refresh.reused",
        # A used authorization code came back: the tokens of its first use are revoked.
        "code.reused",
        "consent.granted",
        "consent.denied",
        "consent.revoked",
        "client.authentication_failed",
        "key.created",
        "key.revoked",
        "key.rotated",
        "user.password_changed",
        # POST /account/password with a wrong current password, or refused by the throttle.
        "user.password_change_failed",
        "user.password_change_throttled",
        "user.disabled",
        "user.roles_changed",
        # A bad API key / access token at a resource request (401).
        "credential.rejected",
    }
)

# The order fields appear in a log message: who, then what, then why. Stable, so
# a line can be grepped and diffed across releases.
_FIELD_ORDER = (
    "user",
    "subject",
    "kind",
    "client_id",
    "key_id",
    "token_id",
    "family_id",
    "team",
    "grant_type",
    "scope",
    "roles",
    "address",
    "reason",
    "count",
)

#: The field names an event may carry. None of them can hold a secret.
FIELDS: frozenset[str] = frozenset(_FIELD_ORDER)

# Events that mean something went wrong: logged at WARNING so they stand out.
_WARNINGS = frozenset(
    {
        "login.failed",
        "login.throttled",
        "user.password_change_failed",
        "user.password_change_throttled",
        "refresh.reused",
        "code.reused",
        "client.authentication_failed",
        "credential.rejected",
    }
)

#: The type of a field's value.
Value = str | int | bool | None

#: A function that receives every event, after it is logged.
Hook = Callable[["AuditEvent"], None]

#: Longest string kept in a field; the rest is cut, so a huge header cannot flood a log.
MAX_LENGTH = 200

# Characters that let a value forge or hide log lines: C0/C1 controls (CR, LF,
# ESC), format characters (bidi overrides, zero-width), lone surrogates, and the
# Unicode line and paragraph separators.
_STRIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Values written bare in a message; anything else is JSON-quoted so "k=v" stays parseable.
_BARE = re.compile(r"[A-Za-z0-9_.:@/+-]+")

log = logging.getLogger("authmw")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit event: a name from :data:`EVENTS`, when (UTC) and its fields."""

    name: str
    at: datetime
    fields: Mapping[str, Value]

    def as_dict(self) -> dict[str, object]:
        """Return ``{"event": name, "at": ISO 8601, **fields}``, ready for ``json.dumps``."""
        return {"event": self.name, "at": self.at.isoformat(), **self.fields}


class Audit:
    """Emit audit events to a logger and to hooks.

    Hooks are called in the order added, on the thread that emits. A hook that
    raises is logged on the ``authmw`` logger and skipped: shipping an event must
    never fail the request that caused it, nor keep the other hooks from it.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger("authmw.audit")
        # Replaced, never mutated, under the lock: emit() reads it without locking
        # and iterates a tuple no other thread can change.
        self._hooks: tuple[Hook, ...] = ()
        self._lock = threading.Lock()

    def add_hook(self, hook: Hook) -> None:
        """Call ``hook(event)`` for every event from now on; adding it again does nothing."""
        with self._lock:
            if hook not in self._hooks:
                self._hooks = (*self._hooks, hook)

    def remove_hook(self, hook: Hook) -> None:
        """Stop calling ``hook``; removing one that was not added does nothing."""
        with self._lock:
            self._hooks = tuple(h for h in self._hooks if h != hook)

    def emit(self, name: str, **fields: Value) -> AuditEvent:
        """Log the event ``name`` with ``fields``, call the hooks, and return the event.

        Raises ``ValueError`` for a name not in :data:`EVENTS` or a field not in
        :data:`FIELDS`, ``TypeError`` for a value that is not str, int, bool or None.
        Strings are stripped of control characters and cut to 200 characters.
        """
        if name not in EVENTS:
            raise ValueError(f"unknown audit event {name!r}")
        unknown = fields.keys() - FIELDS
        if unknown:
            raise ValueError(f"audit events carry no field {', '.join(sorted(unknown))}")
        clean = {key: _clean(fields[key]) for key in _FIELD_ORDER if key in fields}
        event = AuditEvent(name, datetime.now(UTC), MappingProxyType(clean))
        level = logging.WARNING if name in _WARNINGS else logging.INFO
        if self.logger.isEnabledFor(level):
            message = " ".join([name, *(f"{k}={_format(v)}" for k, v in clean.items())])
            self.logger.log(level, "%s", message, extra={"audit": event.as_dict()})
        for hook in self._hooks:
            try:
                hook(event)
            except Exception:
                log.exception("authmw: audit hook %r failed on %s", hook, name)
        return event


def _clean(value: object) -> Value:
    if value is None or isinstance(value, int):
        return value
    if not isinstance(value, str):
        # str() of an arbitrary object could be anything, a secret included.
        raise TypeError(f"an audit field is str, int, bool or None, not {type(value).__name__}")
    kept = "".join(c for c in value if unicodedata.category(c) not in _STRIPPED_CATEGORIES)
    return kept[:MAX_LENGTH]


def _format(value: Value) -> str:
    if isinstance(value, str) and _BARE.fullmatch(value):
        return value
    # JSON for the rest: quoted strings with escapes, true/false, null, numbers.
    return json.dumps(value)
