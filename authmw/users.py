"""User accounts: create, change password or roles, disable.

Every change that affects what a user may do bumps the user's credential epoch
and drops the user's entries from the authenticator's cache, so the change takes
effect on the user's live credentials at their next request in this process, and
within the cache's staleness bound in every other process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from authmw.errors import InvalidRequest, TooManyRequests
from authmw.passwords import WeakPassword, check_password
from authmw.store import NotFound, User

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = ["Users"]

_USERNAME_RE = re.compile(r"[A-Za-z0-9_.@+-]{1,150}")
_TEAM_RE = re.compile(r"[A-Za-z0-9_.:-]{1,150}")


def _check_teams(teams: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(teams)
    for team in wanted:
        if _TEAM_RE.fullmatch(team) is None:
            raise ValueError("a team name is 1-150 letters, digits or _.:-")
    return wanted


class Users:
    """Manage user accounts. Reached as ``authenticator.users``."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def create(
        self,
        username: str,
        *,
        password: str,
        roles: Iterable[str],
        teams: Iterable[str] = (),
    ) -> User:
        """Create a user. Raises ``ValueError`` for bad input, ``Conflict`` if the name is taken."""
        if _USERNAME_RE.fullmatch(username) is None:
            raise ValueError("a username is 1-150 letters, digits or _.@+-")
        wanted = self._auth.policy.check_roles(roles)
        if not wanted:
            raise ValueError("a user needs at least one role")
        password_hash = self._auth.passwords.hash(check_password(password))
        return self._auth.store.add_user(
            username, password_hash=password_hash, roles=wanted, teams=_check_teams(teams)
        )

    def get(self, username: str) -> User:
        """Return the user; :class:`~authmw.store.NotFound` if there is none."""
        user = self._auth.store.get_user(username)
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    def list(self) -> list[User]:
        """Return every user, by name."""
        return list(self._auth.store.list_users())

    def _changed(self, user: User) -> User:
        self._auth.invalidate(subject=user.username)
        return user

    def set_password(self, username: str, password: str) -> User:
        """Set a new password; the user's existing tokens stop working."""
        password_hash = self._auth.passwords.hash(check_password(password))
        changed = self._changed(
            self._auth.store.update_user(username, password_hash=password_hash, bump_epoch=True)
        )
        self._auth.audit.emit("user.password_changed", user=username)
        return changed

    def change_password(
        self,
        username: str,
        current_password: str,
        new_password: str,
        *,
        address: str | None = None,
    ) -> User:
        """Change a user's own password, given the current one (``POST /account/password``).

        Raises :class:`~authmw.errors.InvalidRequest` (a 400 in every plugin) when
        the current password is wrong or the new one too weak. Every token of the
        user ends, the one that made the request included: the caller signs in again.

        Wrong current passwords count in the login throttle, with the token
        endpoint's failed logins: whoever holds a stolen access token could
        otherwise guess the password behind it without limit. Past the limit this
        raises :class:`~authmw.errors.TooManyRequests` (429, ``Retry-After``)
        without checking the password. ``address``, the client's (from
        :meth:`Authenticator.client_address <authmw.Authenticator.client_address>`),
        adds the tighter per-account-and-address limit to the per-account one.
        """

        def check() -> User | None:
            user = self.get(username)
            ok, _ = self._auth.passwords.verify(current_password, user.password_hash)
            return user if ok and not user.disabled else None

        try:
            user = self._auth.login_throttle.attempt(username, address, check)
        except TooManyRequests:
            self._auth.audit.emit("user.password_change_throttled", user=username, address=address)
            raise
        if user is None:
            self._auth.audit.emit("user.password_change_failed", user=username, address=address)
            raise InvalidRequest("The current password is wrong.")
        try:
            return self.set_password(username, new_password)
        except WeakPassword as exc:
            raise InvalidRequest(f"The new password is too weak: {exc}.") from None

    def set_roles(self, username: str, roles: Iterable[str]) -> User:
        """Replace the user's roles; live credentials carry the new roles from now on."""
        wanted = self._auth.policy.check_roles(roles)
        if not wanted:
            raise ValueError("a user needs at least one role")
        changed = self._changed(
            self._auth.store.update_user(username, roles=wanted, bump_epoch=True)
        )
        self._auth.audit.emit("user.roles_changed", user=username, roles=" ".join(sorted(wanted)))
        return changed

    def set_teams(self, username: str, teams: Iterable[str]) -> User:
        """Replace the user's teams."""
        return self._changed(
            self._auth.store.update_user(username, teams=_check_teams(teams), bump_epoch=True)
        )

    def disable(self, username: str) -> User:
        """Disable the user ("left the organization"): every credential of theirs stops."""
        changed = self._changed(
            self._auth.store.update_user(username, disabled=True, bump_epoch=True)
        )
        self._auth.audit.emit("user.disabled", user=username)
        return changed

    def enable(self, username: str) -> User:
        """Re-enable a disabled user. Their old tokens stay dead (the epoch moved on).

        Their personal API keys work again: a key is revoked only by its own
        revocation, which is final; revoke them first if they must not return.
        """
        return self._changed(self._auth.store.update_user(username, disabled=False))
