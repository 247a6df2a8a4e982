"""Helpers of the Django tests: the fixture world, as in the Starlette tests.

Users: ``admin`` (role admin, team blue), ``manager`` (role manager, team blue),
``employee`` (role employee, team red). Keys, by name: ``admin`` (personal,
global), ``team_blue`` (team service account), ``restricted`` (personal,
``appointments:read`` only), ``revoked``.

User access tokens are not issued by the core yet, so :class:`TokenStub`
resolves two fixed bearer strings to the principals the policy builds for a
user's token, on both the sync and the async path of the middleware. (A copy
of the Starlette tests' stub: that package needs Starlette.)
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from wsgiref.util import setup_testing_defaults

from authmw import Authenticator, PasswordHasher, Policy, Principal, Settings
from authmw.credentials import Credential
from authmw.store import Store

__all__ = [
    "EMPLOYEE_TOKEN",
    "MANAGER_TOKEN",
    "TokenStub",
    "build_authenticator",
    "call_wsgi",
    "issue_keys",
]

MANAGER_TOKEN = "tok.manager"
EMPLOYEE_TOKEN = "tok.employee"


class TokenStub(Authenticator):
    """An authenticator that also knows two fixed user access tokens."""

    tokens: dict[str, Principal]

    def authenticate(self, credential: Credential | None) -> Principal | None:
        """Resolve a stub token, else verify for real."""
        if credential is not None and credential.value in self.tokens:
            return self.tokens[credential.value]
        return super().authenticate(credential)

    async def authenticate_async(self, credential: Credential | None) -> Principal | None:
        """Resolve a stub token, else verify for real."""
        if credential is not None and credential.value in self.tokens:
            return self.tokens[credential.value]
        return await super().authenticate_async(credential)


def build_authenticator(store: Store, settings: Settings | None = None) -> TokenStub:
    """Create the schema, the users and the stub tokens on ``store``."""
    auth = TokenStub(
        store,
        policy=Policy.default(),
        settings=settings,
        passwords=PasswordHasher(memory_cost=1024, time_cost=1),
    )
    store.create_schema()
    auth.users.create("admin", password="admin-password", roles=["admin"], teams=["blue"])
    manager = auth.users.create(
        "manager", password="manager-password", roles=["manager"], teams=["blue"]
    )
    employee = auth.users.create(
        "employee", password="employee-password", roles=["employee"], teams=["red"]
    )
    auth.tokens = {
        MANAGER_TOKEN: auth.policy.user_principal(manager, credential_id="t-manager"),
        EMPLOYEE_TOKEN: auth.policy.user_principal(employee, credential_id="t-employee"),
    }
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


def call_wsgi(
    app: Any,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one request through a WSGI app: ``(status, headers, body)``.

    A dozen lines instead of WebTest, whose WebOb still imports the deprecated ``cgi``.
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[Any] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        started[:] = [int(status.split(maxsplit=1)[0]), response_headers]

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started[0], list(started[1]), content
