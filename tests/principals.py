"""Principals and keys shared by the plugin test suites (Starlette, Flask, Django).

Framework-free, so every tox environment can import it. User access tokens do
not exist yet (they come with the token service): :class:`TokenStub` maps two
fixed bearer strings to the principals :meth:`authmw.policy.Policy.user_principal`
builds, so the ``user`` rows of the rule table run through each real middleware.
Delete it when tokens land.
"""

from __future__ import annotations

from authmw import Authenticator, PasswordHasher, Policy, Principal, Settings
from authmw.credentials import Credential
from authmw.store import Store

__all__ = ["EMPLOYEE_TOKEN", "MANAGER_TOKEN", "TokenStub", "build_authenticator", "issue_keys"]

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
