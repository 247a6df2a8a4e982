"""The rule table as code.

Two halves, both here so the rule is written once:

* *building* a principal from a stored credential (:meth:`Policy.key_principal`,
  :meth:`Policy.user_principal`): this is where "an API key is global, a token is
  restricted by its user's role" is decided;
* *checking* a principal against a route's requirements (:meth:`Policy.authorize`),
  which every decorator, dependency and permission class of every plugin calls.

=====================  ==================  ====================  =====================
principal              ``requires_role``   ``requires_scope``    team-bound ``t``
=====================  ==================  ====================  =====================
personal API key       allow (global)      allow                 allow
team API key (team T)  allow (global)      allow                 ``t == T``
restricted API key     deny                only its scopes       as above
user                   user's roles        token's scopes        user's teams
client                 client's roles      granted scopes        ``t == client.team``
delegated              user's roles        consented ∩ roles'    user's teams
=====================  ==================  ====================  =====================

With ``api_keys="inherit"`` a personal key instead carries its owner's current
roles, scopes and teams, like the owner's own token would.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from authmw.errors import Forbidden, InsufficientRole, InsufficientScope
from authmw.principal import KINDS, Principal

if TYPE_CHECKING:
    from authmw.store import ApiKey, Client, User

__all__ = ["ApiKeyMode", "Policy", "Role", "check_kinds"]

ApiKeyMode = Literal["global", "inherit"]


@dataclass(frozen=True, slots=True)
class Role:
    """A role: the scopes it grants itself and the roles it includes."""

    scopes: frozenset[str] = frozenset()
    includes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, scopes: Iterable[str] = (), includes: Iterable[str] = ()) -> Role:
        """Build a role from any iterables."""
        return cls(frozenset(scopes), frozenset(includes))


class Policy:
    """Roles (a hierarchy), the scopes each role grants, and how API keys behave.

    >>> policy = Policy({
    ...     "employee": Role.of(scopes=["appointments:read"]),
    ...     "manager": Role.of(scopes=["reports:read"], includes=["employee"]),
    ... })
    >>> sorted(policy.effective_roles(["manager"]))
    ['employee', 'manager']
    """

    def __init__(self, roles: Mapping[str, Role], *, api_keys: ApiKeyMode = "global") -> None:
        if api_keys not in ("global", "inherit"):
            raise ValueError("api_keys must be 'global' or 'inherit'")
        for name, role in roles.items():
            unknown = role.includes - roles.keys()
            if unknown:
                raise ValueError(f"role {name!r} includes unknown roles {sorted(unknown)}")
        self.roles: Mapping[str, Role] = dict(roles)
        self.api_keys: ApiKeyMode = api_keys
        self._closure = {name: self._expand(name, ()) for name in roles}
        self._effective_memo: dict[frozenset[str], frozenset[str]] = {}
        self._scopes_memo: dict[frozenset[str], frozenset[str]] = {}
        self._scopes = {
            name: frozenset().union(*(roles[r].scopes for r in closure))
            for name, closure in self._closure.items()
        }
        included = frozenset().union(*(role.includes for role in roles.values()))
        #: Roles no other role includes: the only ones that may own a global personal key.
        self.top_roles: frozenset[str] = frozenset(roles.keys() - included)
        self.all_roles: frozenset[str] = frozenset(roles)
        self.all_scopes: frozenset[str] = frozenset().union(*self._scopes.values())

    def _expand(self, name: str, path: tuple[str, ...]) -> frozenset[str]:
        if name in path:
            raise ValueError(f"role hierarchy has a cycle: {' -> '.join((*path, name))}")
        out = {name}
        for included in self.roles[name].includes:
            out |= self._expand(included, (*path, name))
        return frozenset(out)

    @classmethod
    def default(cls, *, api_keys: ApiKeyMode = "global") -> Policy:
        """Return the demo policy: ``admin ⊇ manager ⊇ employee``."""
        return cls(
            {
                "employee": Role.of(scopes=["appointments:read"]),
                "manager": Role.of(
                    scopes=["reports:read", "appointments:write"], includes=["employee"]
                ),
                "admin": Role.of(scopes=["admin"], includes=["manager"]),
            },
            api_keys=api_keys,
        )

    # -- role arithmetic -------------------------------------------------------

    def check_roles(self, roles: Iterable[str]) -> frozenset[str]:
        """Return ``roles`` as a set, raising ``ValueError`` for a role the policy lacks."""
        wanted = frozenset(roles)
        unknown = wanted - self.all_roles
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        return wanted

    def effective_roles(self, roles: Iterable[str]) -> frozenset[str]:
        """Expand assigned roles through the hierarchy; unknown roles grant nothing."""
        return self._memo(self._effective_memo, roles, self._closure)

    def scopes_for(self, roles: Iterable[str]) -> frozenset[str]:
        """Return every scope the given (assigned) roles grant."""
        return self._memo(self._scopes_memo, roles, self._scopes)

    @staticmethod
    def _memo(
        memo: dict[frozenset[str], frozenset[str]],
        roles: Iterable[str],
        table: Mapping[str, frozenset[str]],
    ) -> frozenset[str]:
        # A policy never changes after it is built, and a deployment has a handful
        # of role combinations, so each answer is computed once: building a token's
        # principal asks for both on every cold verification.
        key = roles if isinstance(roles, frozenset) else frozenset(roles)
        found = memo.get(key)
        if found is None:
            found = frozenset().union(*(table.get(r, frozenset()) for r in key))
            if len(memo) < 4096:
                memo[key] = found
        return found

    def may_own_global_key(self, roles: Iterable[str]) -> bool:
        """Whether a user with these roles may own a global personal key."""
        return not self.top_roles.isdisjoint(roles)

    # -- building principals -----------------------------------------------------

    def user_principal(
        self,
        user: User,
        *,
        kind: Literal["user", "delegated"] = "user",
        scopes: Collection[str] | None = None,
        credential_id: str | None = None,
        client_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> Principal:
        """Build the principal of a user's token, restricted by the user's *current* roles.

        ``scopes`` narrows the grant (a token asked for fewer scopes, or an app
        got consent for fewer); it can never widen what the roles allow.
        """
        granted = self.scopes_for(user.roles)
        if scopes is not None:
            granted = granted & frozenset(scopes)
        return Principal(
            kind=kind,
            subject=user.username,
            roles=self.effective_roles(user.roles),
            scopes=granted,
            teams=user.teams,
            credential_id=credential_id,
            client_id=client_id,
            expires_at=expires_at,
        )

    def client_principal(
        self,
        client: Client,
        *,
        scopes: Collection[str] | None = None,
        credential_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> Principal:
        """Build the principal of an OAuth2 client's token (client-credentials grant).

        Bound to the client's team; its roles and scopes are those the client was
        registered with *now* (``scopes`` narrows them to what the token asked for).
        """
        granted = client.scopes if scopes is None else client.scopes & frozenset(scopes)
        return Principal(
            kind="client",
            subject=client.id,
            roles=self.effective_roles(client.roles),
            scopes=granted,
            team=client.team,
            teams=frozenset() if client.team is None else frozenset({client.team}),
            credential_id=credential_id,
            client_id=client.id,
            expires_at=expires_at,
        )

    def key_principal(self, key: ApiKey, owner: User | None) -> Principal | None:
        """Build the principal an API key acts as, or ``None`` when it may no longer act.

        A personal key dies with its owner's standing: a disabled owner, or (in
        ``global`` mode) an owner who no longer holds a top role, makes the key
        fail verification instead of leaving a global credential behind.
        """
        restricted = key.scopes is not None
        if key.team is not None:
            # A team service account: global within its team, unless restricted.
            return Principal(
                kind="api_key",
                subject=f"team:{key.team}",
                roles=frozenset() if restricted else self.all_roles,
                scopes=key.scopes if key.scopes is not None else self.all_scopes,
                team=key.team,
                teams=frozenset({key.team}),
                credential_id=key.id,
                expires_at=key.expires_at,
                unrestricted=not restricted,
            )
        if owner is None or owner.disabled:
            return None
        if self.api_keys == "inherit":
            roles = frozenset() if restricted else self.effective_roles(owner.roles)
            scopes = self.scopes_for(owner.roles)
            if key.scopes is not None:
                scopes &= key.scopes
            return Principal(
                kind="api_key",
                subject=owner.username,
                roles=roles,
                scopes=scopes,
                teams=owner.teams,
                credential_id=key.id,
                expires_at=key.expires_at,
            )
        if not self.may_own_global_key(owner.roles):
            return None
        return Principal(
            kind="api_key",
            subject=owner.username,
            roles=frozenset() if restricted else self.all_roles,
            scopes=key.scopes if key.scopes is not None else self.all_scopes,
            teams=owner.teams,
            credential_id=key.id,
            expires_at=key.expires_at,
            unrestricted=not restricted,
        )

    # -- checking principals ---------------------------------------------------------

    def authorize(
        self,
        principal: Principal,
        *,
        roles: Collection[str] = (),
        scopes: Collection[str] = (),
        kinds: Collection[str] | None = None,
        team: str | None = None,
    ) -> None:
        """Raise an :class:`~authmw.errors.AuthError` unless ``principal`` may proceed.

        ``roles``: the principal needs at least one of them (the hierarchy is already
        expanded into ``principal.roles``). ``scopes``: it needs all of them.
        ``kinds``: the kinds of principal the route admits. ``team``: the team the
        resource belongs to.
        """
        self.check(principal, roles, scopes, kinds, team)

    def check(
        self,
        principal: Principal,
        roles: Collection[str],
        scopes: Collection[str],
        kinds: Collection[str] | None,
        team: str | None,
    ) -> None:
        """:meth:`authorize` with positional arguments, for guards that run on every request.

        Binding keyword arguments costs a call about a third more; the rule is here once.
        The guards' :func:`~authmw.context.check_found` answers the commonest case
        itself, a global API key on a route that names no kinds and no team, with
        the answer this gives (a test holds the two equal).
        """
        if kinds is not None and principal.kind not in kinds:
            raise Forbidden("This kind of credential may not call this endpoint.")
        if not principal.unrestricted:
            if roles and principal.roles.isdisjoint(roles):
                raise InsufficientRole()
            if scopes and not principal.scopes.issuperset(scopes):
                raise InsufficientScope(frozenset(scopes))
        if team is not None and not self._team_allowed(principal, team):
            raise Forbidden("This credential is not allowed to act for this team.")

    def _team_allowed(self, principal: Principal, team: str) -> bool:
        if principal.team is not None:
            # Team API keys and OAuth2 clients are bound to exactly one team.
            return team == principal.team
        if principal.kind == "api_key" and self.api_keys == "global":
            # A personal key acts for an administrator, whose reach is global.
            return True
        return team in principal.teams


def check_kinds(kinds: Collection[str] | None) -> frozenset[str] | None:
    """Validate a ``kinds=`` argument once, so a typo fails at import time, not per request."""
    if kinds is None:
        return None
    wanted = frozenset(kinds)
    unknown = wanted - KINDS
    if unknown:
        raise ValueError(f"unknown principal kind(s): {', '.join(sorted(unknown))}")
    return wanted
