"""Principals and keys shared by the plugin test suites (Starlette, Flask, Django).

Framework-free, so every tox environment can import it. The two user access
tokens are real tokens, signed with :data:`SECRET_KEY` for users created with
epoch 0: deterministic strings, so a suite can use them as constants, and
verified by the real token path of each real middleware.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from authmw import Authenticator, PasswordHasher, Policy, Settings
from authmw.store import Client, Store
from authmw.tokens import AccessClaims, AccessTokenCodec

__all__ = [
    "APP_ID",
    "EMPLOYEE_TOKEN",
    "MANAGER_TOKEN",
    "SECRET_KEY",
    "build_authenticator",
    "issue_keys",
]

#: The signing key of the plugin suites' authenticators.
SECRET_KEY = "plugin-suites-signing-key-0123456789abcdef"
#: The first-party app the user tokens were issued to (a token ends with its app).
APP_ID = "test-app"


def _user_token(user: str, roles: frozenset[str], scopes: frozenset[str]) -> str:
    # Far-future expiry, no refresh family: a token as the password grant issues it.
    claims = AccessClaims(
        token_id=f"t-{user}",
        kind="user",
        subject=user,
        client_id=APP_ID,
        issued_at=0,
        expires_at=2**32,
        roles=roles,
        scopes=scopes,
        epoch=0,
    )
    return AccessTokenCodec([SECRET_KEY]).encode(claims)


_POLICY = Policy.default()
MANAGER_TOKEN = _user_token(
    "manager", _POLICY.effective_roles(["manager"]), _POLICY.scopes_for(["manager"])
)
EMPLOYEE_TOKEN = _user_token(
    "employee", _POLICY.effective_roles(["employee"]), _POLICY.scopes_for(["employee"])
)


def build_authenticator(store: Store, settings: Settings | None = None) -> Authenticator:
    """Create the schema, the users the tokens belong to and their app, on ``store``."""
    settings = dataclasses.replace(settings or Settings(), secret_keys=(SECRET_KEY,))
    auth = Authenticator(
        store,
        policy=Policy.default(),
        settings=settings,
        passwords=PasswordHasher(memory_cost=1024, time_cost=1),
    )
    store.create_schema()
    auth.users.create("admin", password="admin-password", roles=["admin"], teams=["blue"])
    auth.users.create("manager", password="manager-password", roles=["manager"], teams=["blue"])
    auth.users.create("employee", password="employee-password", roles=["employee"], teams=["red"])
    store.add_client(
        Client(
            id=APP_ID,
            name="test app",
            kind="app",
            team=None,
            scopes=frozenset(),
            roles=frozenset(),
            redirect_uris=("https://app.example/cb",),
            public=False,
            first_party=True,
            created_at=datetime.now(UTC),
        )
    )
    return auth


def issue_keys(auth: Authenticator) -> dict[str, str]:
    """Issue the fixture keys on ``auth``; return them by name."""
    revoked = auth.keys.create(name="old", owner="admin")
    auth.keys.revoke(revoked.record.id)
    return {
        "admin": auth.keys.create(name="admin laptop", owner="admin").key,
        "team_blue": auth.keys.create(name="blue service", team="blue").key,
        "restricted": auth.keys.create(
            name="calendar sync", owner="admin", scopes=["appointments:read"]
        ).key,
        "revoked": revoked.key,
    }
