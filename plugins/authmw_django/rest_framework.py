"""Django REST framework: an authentication class and permission classes on the one policy.

In ``settings.py`` (with :class:`~authmw_django.AuthMiddleware` in ``MIDDLEWARE``)::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["authmw_django.rest_framework.AuthmwAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["authmw_django.rest_framework.HasPrincipal"],
    }

and on a view::

    class Reports(APIView):
        permission_classes = [HasRole("manager")]

How the principal maps onto DRF's request:

* ``request.auth`` is the :class:`~authmw.Principal`: DRF's slot for "what the
  credential grants", and where the rule table's inputs live.
* ``request.user`` is a :class:`PrincipalUser`, a light stand-in for a Django
  user (``is_authenticated``, ``pk`` and ``username`` = the principal's subject)
  so DRF's throttles and ``IsAuthenticated`` work. It is no ``auth.User``
  row: authmw keeps its accounts in its own store, and Django's permissions
  (``has_perm``) grant it nothing.

Refusals are the core's errors, raised from ``has_permission``: DRF does not
handle them, so they reach the middleware, which renders the same status,
``WWW-Authenticate`` and JSON body as every authmw framework. (DRF's own
``NotAuthenticated`` would answer ``{"detail": ...}`` instead.) The one
consequence: a refusal ends the check, so combine these classes with ``&`` or
list them, never with ``|``; for "any of these roles" pass them all to one
:func:`HasRole`.

Like the middleware, :class:`AuthmwAuthentication` lets a request with a bad
credential through as anonymous; the permission class then answers with the
error that credential met (401 ``invalid_token``, 400, 503), and a view open to
all (``AllowAny``) answers as it would without the credential, as in every
authmw framework.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from authmw.context import Found, RequestAuth, _current, _no_context, check_found
from authmw.decorators import Requirement
from authmw.errors import MissingCredentials
from authmw.principal import Principal

__all__ = [
    "AuthmwAuthentication",
    "HasKind",
    "HasPrincipal",
    "HasRole",
    "HasScope",
    "HasTeam",
    "PrincipalUser",
]


def _found() -> Found:
    # What the middleware recorded around the view, read as the route guards read it
    # (no attribute of DRF's request, whose proxy to Django's costs a failed lookup
    # first). Without the middleware this raises the error that says so.
    return _current.get() or _no_context()


class PrincipalUser:
    """``request.user`` for an authmw principal: enough of a Django user for DRF."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    # One is made per request: one slot to fill, not a dict of four attributes.
    # ``__dict__`` stays available, made only if something sets another attribute.
    __slots__ = ("__dict__", "principal")

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def username(self) -> str:
        """The subject: a username, or ``team:<name>`` for a team key."""
        return self.principal.subject

    pk = id = username

    def get_username(self) -> str:
        """Return the principal's subject."""
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Django's model permissions grant nothing here: authmw's policy decides."""
        return False

    def has_perms(self, perm_list: Collection[str], obj: object = None) -> bool:
        """As :meth:`has_perm`."""
        return False

    def has_module_perms(self, app_label: str) -> bool:
        """As :meth:`has_perm`."""
        return False

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"PrincipalUser({self.principal!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrincipalUser) and other.principal == self.principal

    def __hash__(self) -> int:
        return hash(self.principal)


class AuthmwAuthentication(BaseAuthentication):  # type: ignore[misc]  # DRF is untyped
    """Hand DRF the principal the middleware resolved: ``(PrincipalUser, Principal)``.

    It never parses a header a second time, so it needs the middleware.
    """

    def authenticate(self, request: Any) -> tuple[PrincipalUser, Principal] | None:
        """Return the user and principal, or ``None`` for an anonymous request."""
        principal = _found()[1]
        if principal is None:
            return None
        return PrincipalUser(principal), principal

    def authenticate_header(self, request: Any) -> str:
        """Return the challenge of a 401, should DRF itself answer one (``IsAuthenticated``)."""
        realm = _found()[0].settings.realm
        return MissingCredentials().www_authenticate(realm)


_NO_PARAMS: Mapping[str, Any] = {}


class _Requires(BasePermission):  # type: ignore[misc]  # DRF is untyped
    requirement: ClassVar[Requirement] = Requirement()

    def has_permission(self, request: Any, view: Any) -> bool:
        requirement = self.requirement
        if requirement.team_param is None:
            check_found(_found(), requirement.roles, requirement.scopes, requirement.kinds, None)
        else:
            # URL kwargs of the route are on the view, as DRF keeps them.
            params = getattr(view, "kwargs", None) or _NO_PARAMS
            requirement.check(RequestAuth(*_found()), params)
        return True


class HasPrincipal(_Requires):
    """Any valid credential: authmw's ``IsAuthenticated``, answering with authmw's 401."""

    requirement = Requirement()


def _permission(name: str, args: Collection[str], requirement: Requirement) -> type[_Requires]:
    title = f"{name}({', '.join(repr(a) for a in args)})"
    return type(title, (_Requires,), {"requirement": requirement, "__module__": __name__})


# The factories below are named like the classes they return, so the result goes
# wherever DRF takes a permission class: ``permission_classes = [HasRole("manager")]``,
# ``@permission_classes``, or ``HasRole("manager") & HasScope("reports:read")``.
# Arguments are checked once, when the class is made.


def HasKind(*kinds: str) -> type[_Requires]:
    """Require any valid credential of one of ``kinds`` (``HasKind("user")``)."""
    return _permission("HasKind", kinds, Requirement.build(kinds=kinds))


def HasRole(*roles: str, kinds: Collection[str] | None = None) -> type[_Requires]:
    """Require one of ``roles`` (through the hierarchy): ``[HasRole("manager")]``."""
    return _permission("HasRole", roles, Requirement.build(roles=roles, kinds=kinds))


def HasScope(*scopes: str, kinds: Collection[str] | None = None) -> type[_Requires]:
    """Require all of ``scopes``: ``[HasScope("appointments:read")]``."""
    return _permission("HasScope", scopes, Requirement.build(scopes=scopes, kinds=kinds))


def HasTeam(param: str = "team", *, kinds: Collection[str] | None = None) -> type[_Requires]:
    """Require the team named by URL kwarg ``param``: ``[HasTeam("team")]``."""
    return _permission("HasTeam", (param,), Requirement.build(team_param=param, kinds=kinds))
