"""The Principal: who is calling, as every framework plugin sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

__all__ = ["KINDS", "Kind", "Principal"]

#: The kinds of principal authmw resolves (see the rule table in the docs).
Kind = Literal["api_key", "user", "client", "delegated"]
KINDS: frozenset[str] = frozenset({"api_key", "user", "client", "delegated"})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller (immutable; compared and hashed by value).

    ``roles`` holds the *effective* roles: the role hierarchy is already expanded,
    so a manager's principal lists ``employee`` too and a check is one set lookup.
    ``team`` is set for principals bound to exactly one team (a team API key, an
    OAuth2 client); ``teams`` lists the teams of the user behind the principal.
    ``unrestricted`` marks a global API key, which passes every role and scope
    check (its team binding, if any, still applies).
    """

    kind: Kind
    subject: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    team: str | None = None
    teams: frozenset[str] = frozenset()
    credential_id: str | None = None
    client_id: str | None = None
    expires_at: datetime | None = None
    unrestricted: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form served by ``GET /me``: sets become sorted lists."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "roles": sorted(self.roles),
            "scopes": sorted(self.scopes),
            "team": self.team,
            "teams": sorted(self.teams),
            "credential_id": self.credential_id,
            "client_id": self.client_id,
        }
