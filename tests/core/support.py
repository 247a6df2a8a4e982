"""Helpers shared by the core tests: real stores with a tally, a steppable clock."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from authmw import keys
from authmw.authenticator import Authenticator
from authmw.errors import AuthError
from authmw.principal import Principal
from authmw.store import (
    ApiKey,
    AuthorizationCode,
    Client,
    Consent,
    KeyMatch,
    RefreshToken,
    Revocation,
    Store,
    User,
)

__all__ = ["CountingStore", "ManualClock", "Outcome", "outcome_of", "store_key"]


class CountingStore:
    """A real store that also notes each call it serves and the thread that made it.

    Not a mock: every call goes to the wrapped store and returns what it returns.
    Tests use the tally to prove the warm path makes no call at all and the async
    driver makes its calls off the event loop's thread.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def _note(self, name: str) -> None:
        with self._lock:
            self.calls.append((name, threading.get_ident()))

    def count(self, name: str | None = None) -> int:
        """How many calls (of method ``name``) the store has served."""
        tally = Counter(n for n, _ in self.calls)
        return sum(tally.values()) if name is None else tally[name]

    def threads(self, name: str) -> set[int]:
        """The thread idents that called method ``name``."""
        return {t for n, t in self.calls if n == name}

    def create_schema(self) -> None:
        self._note("create_schema")
        self.inner.create_schema()

    def add_user(
        self,
        username: str,
        *,
        password_hash: str | None,
        roles: frozenset[str],
        teams: frozenset[str],
    ) -> User:
        self._note("add_user")
        return self.inner.add_user(username, password_hash=password_hash, roles=roles, teams=teams)

    def get_user(self, username: str) -> User | None:
        self._note("get_user")
        return self.inner.get_user(username)

    def list_users(self) -> Sequence[User]:
        self._note("list_users")
        return self.inner.list_users()

    def update_user(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        roles: frozenset[str] | None = None,
        teams: frozenset[str] | None = None,
        disabled: bool | None = None,
        bump_epoch: bool = False,
    ) -> User:
        self._note("update_user")
        return self.inner.update_user(
            username,
            password_hash=password_hash,
            roles=roles,
            teams=teams,
            disabled=disabled,
            bump_epoch=bump_epoch,
        )

    def add_key(self, key: ApiKey) -> ApiKey:
        self._note("add_key")
        return self.inner.add_key(key)

    def find_key(self, key_id: str) -> KeyMatch | None:
        self._note("find_key")
        return self.inner.find_key(key_id)

    def get_key(self, key_id: str) -> ApiKey | None:
        self._note("get_key")
        return self.inner.get_key(key_id)

    def list_keys(self, *, owner: str | None = None, team: str | None = None) -> Sequence[ApiKey]:
        self._note("list_keys")
        return self.inner.list_keys(owner=owner, team=team)

    def revoke_key(self, key_id: str, at: datetime) -> ApiKey:
        self._note("revoke_key")
        return self.inner.revoke_key(key_id, at)

    def rotate_key(self, key_id: str, successor: ApiKey, old_expires_at: datetime) -> ApiKey:
        self._note("rotate_key")
        return self.inner.rotate_key(key_id, successor, old_expires_at)

    def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        self._note("record_key_use")
        self.inner.record_key_use(last_used)

    def add_client(self, client: Client) -> Client:
        self._note("add_client")
        return self.inner.add_client(client)

    def get_client(self, client_id: str) -> Client | None:
        self._note("get_client")
        return self.inner.get_client(client_id)

    def list_clients(self, *, kind: str | None = None) -> Sequence[Client]:
        self._note("list_clients")
        return self.inner.list_clients(kind=kind)

    def update_client(
        self,
        client_id: str,
        *,
        disabled: bool | None = None,
        secret_hash: str | None = None,
        previous_secret_hash: str | None = None,
        previous_secret_expires_at: datetime | None = None,
        clear_previous: bool = False,
    ) -> Client:
        self._note("update_client")
        return self.inner.update_client(
            client_id,
            disabled=disabled,
            secret_hash=secret_hash,
            previous_secret_hash=previous_secret_hash,
            previous_secret_expires_at=previous_secret_expires_at,
            clear_previous=clear_previous,
        )

    def reenable_client(self, client_id: str, at: datetime) -> Client:
        self._note("reenable_client")
        return self.inner.reenable_client(client_id, at)

    def add_refresh_token(self, token: RefreshToken) -> RefreshToken:
        self._note("add_refresh_token")
        return self.inner.add_refresh_token(token)

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        self._note("get_refresh_token")
        return self.inner.get_refresh_token(token_id)

    def rotate_refresh_token(self, token_id: str, successor: RefreshToken, at: datetime) -> bool:
        self._note("rotate_refresh_token")
        return self.inner.rotate_refresh_token(token_id, successor, at)

    def revoke_refresh_family(self, family_id: str, at: datetime) -> int:
        self._note("revoke_refresh_family")
        return self.inner.revoke_refresh_family(family_id, at)

    def revoke_refresh_tokens(
        self, *, subject: str, client_id: str | None = None, at: datetime
    ) -> list[str]:
        self._note("revoke_refresh_tokens")
        return self.inner.revoke_refresh_tokens(subject=subject, client_id=client_id, at=at)

    def add_code(self, code: AuthorizationCode) -> AuthorizationCode:
        self._note("add_code")
        return self.inner.add_code(code)

    def get_code(self, code_id: str) -> AuthorizationCode | None:
        self._note("get_code")
        return self.inner.get_code(code_id)

    def consume_code(self, code_id: str, at: datetime) -> bool:
        self._note("consume_code")
        return self.inner.consume_code(code_id, at)

    def set_code_family(self, code_id: str, family_id: str) -> None:
        self._note("set_code_family")
        self.inner.set_code_family(code_id, family_id)

    def purge_codes(self, before: datetime) -> int:
        self._note("purge_codes")
        return self.inner.purge_codes(before)

    def get_consent(self, subject: str, client_id: str) -> Consent | None:
        self._note("get_consent")
        return self.inner.get_consent(subject, client_id)

    def save_consent(
        self, subject: str, client_id: str, scopes: frozenset[str], at: datetime
    ) -> Consent:
        self._note("save_consent")
        return self.inner.save_consent(subject, client_id, scopes, at)

    def list_consents(
        self, *, subject: str | None = None, client_id: str | None = None
    ) -> Sequence[Consent]:
        self._note("list_consents")
        return self.inner.list_consents(subject=subject, client_id=client_id)

    def delete_consent(self, subject: str, client_id: str) -> bool:
        self._note("delete_consent")
        return self.inner.delete_consent(subject, client_id)

    def add_revocation(self, revocation: Revocation) -> None:
        self._note("add_revocation")
        self.inner.add_revocation(revocation)

    def revocations_since(self, since: datetime) -> Sequence[Revocation]:
        self._note("revocations_since")
        return self.inner.revocations_since(since)

    def purge_revocations(self, before: datetime) -> int:
        self._note("purge_revocations")
        return self.inner.purge_revocations(before)

    def close(self) -> None:
        self._note("close")
        self.inner.close()


class ManualClock:
    """A monotonic clock that moves only when told to, for staleness-bound tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def store_key(
    auth: Authenticator,
    *,
    owner: str | None = None,
    team: str | None = None,
    scopes: frozenset[str] | None = None,
    expires_at: datetime | None = None,
    revoked_at: datetime | None = None,
    secret_hash: str | None = None,
    name: str = "direct",
) -> str:
    """Write a key record straight into the store (states the API cannot make on demand).

    Returns the key string. ``secret_hash`` overrides the hash, to store a record
    whose secret does not match the key handed back.
    """
    value, parsed = keys.generate(auth.settings.key_prefix)
    auth.store.add_key(
        ApiKey(
            id=parsed.key_id,
            name=name,
            owner=owner,
            team=team,
            scopes=scopes,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
            revoked_at=revoked_at,
            secret_hash=secret_hash if secret_hash is not None else keys.hash_secret(parsed),
        )
    )
    return value


@dataclass(frozen=True)
class Outcome:
    """What one authentication produced: a principal, or an error and its rendering."""

    principal: Principal | None
    error: type[AuthError] | None = None
    rendered: tuple[int, tuple[tuple[str, str], ...], bytes] | None = None


def outcome_of(error: AuthError | None, principal: Principal | None = None) -> Outcome:
    """Build an :class:`Outcome` from what a driver returned or raised."""
    if error is None:
        return Outcome(principal)
    r = error.render()
    return Outcome(None, type(error), (r.status, r.headers, r.body))
