"""The fixture world of the Flask tests: users, keys and two stand-in user tokens.

A copy of the parts of :mod:`tests.starlette.support` these tests need (that
module imports httpx and Starlette, which the Flask environment does not
install). Users: ``admin`` (role admin, team blue), ``manager`` (role manager,
team blue), ``employee`` (role employee, team red). Keys, by name:

* ``admin`` -- personal key of ``admin``: global;
* ``team_blue`` -- team service account of team ``blue``;
* ``restricted`` -- personal key of ``admin`` restricted to ``appointments:read``;
* ``revoked`` -- a personal key of ``admin``, revoked.

User access tokens are not issued by the core yet, so :class:`TokenStub`
resolves two fixed bearer strings to the principals the policy builds for a
user's token. It overrides the *sync* driver, the one WSGI uses (the Starlette
copy overrides the async one).
"""

from __future__ import annotations

from typing import Any

from authmw import Authenticator, AuthError, PasswordHasher, Policy, Principal, Settings
from authmw.credentials import Credential
from authmw.store.sql import SQLStore

__all__ = [
    "EMPLOYEE_TOKEN",
    "MANAGER_TOKEN",
    "TokenStub",
    "assert_rendered",
    "build_authenticator",
    "issue_keys",
]

#: Bearer strings :class:`TokenStub` turns into user-token principals.
MANAGER_TOKEN = "tok.manager"
EMPLOYEE_TOKEN = "tok.employee"


class TokenStub(Authenticator):
    """An authenticator that also knows two fixed user access tokens.

    Everything else (every API key) goes through the real flow. The principals
    are built by :meth:`authmw.policy.Policy.user_principal`, exactly as a token
    module would.
    """

    tokens: dict[str, Principal]

    def authenticate(self, credential: Credential | None) -> Principal | None:
        """Resolve a stub token, else verify for real."""
        if credential is not None and credential.value in self.tokens:
            return self.tokens[credential.value]
        return super().authenticate(credential)


def build_authenticator(store: SQLStore, settings: Settings | None = None) -> TokenStub:
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


def assert_rendered(response: Any, error: AuthError, realm: str = "api") -> None:
    """Assert that a Flask test response is the core's rendering of ``error``, byte for byte.

    Status, body and the header list in order; the only header added is the
    ``Content-Length`` the WSGI middleware adds to its own refusals too.
    """
    rendered = error.render(realm)
    assert response.status_code == rendered.status
    assert response.get_data() == rendered.body
    length = ("Content-Length", str(len(rendered.body)))
    assert list(response.headers) == [*rendered.headers, length]
