"""The DRF classes beyond the rule table: the request mapping, the factories, DRF's own classes."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.permissions import BasePermission

from authmw import Authenticator, MissingCredentials
from authmw_django.rest_framework import (
    AuthmwAuthentication,
    HasKind,
    HasRole,
    HasScope,
    HasTeam,
    PrincipalUser,
)


def test_factories_return_permission_classes_named_after_their_call() -> None:
    manager = HasRole("manager", "admin")
    assert isinstance(manager, type)
    assert issubclass(manager, BasePermission)
    assert manager.__name__ == "HasRole('manager', 'admin')"
    assert manager.requirement.roles == {"manager", "admin"}
    assert HasScope("a", "b").requirement.scopes == {"a", "b"}
    assert HasTeam("org").requirement.team_param == "org"
    assert HasKind("user", "delegated").requirement.kinds == frozenset({"user", "delegated"})


def test_factories_check_their_arguments_at_once() -> None:
    with pytest.raises(ValueError, match="unknown principal kind"):
        HasKind("usr")
    with pytest.raises(TypeError, match="expected a role"):
        HasRole(["manager"])  # type: ignore[arg-type]


def test_request_user_and_auth(keys: dict[str, str], auth: Authenticator) -> None:
    response = Client().get("/drf-open", headers={"X-API-Key": keys["team_blue"]})
    principal = auth.authenticate_headers({"X-API-Key": keys["team_blue"]})
    assert principal is not None
    user = PrincipalUser(principal)
    assert response.json() == {"user": repr(user), "auth": repr(principal)}
    assert user.is_authenticated
    assert not user.is_anonymous
    assert user.pk == user.get_username() == str(user) == "team:blue"
    assert not user.has_perm("auth.add_user")
    assert user == PrincipalUser(principal)
    assert len({user, PrincipalUser(principal)}) == 1


def test_allow_any_serves_anonymous_and_bad_credentials(keys: dict[str, str]) -> None:
    client = Client()
    anonymous = client.get("/drf-open")
    assert anonymous.status_code == 200
    assert anonymous.json()["auth"] == "None"
    # As in every authmw framework, a bad credential on an open route is anonymous.
    revoked = client.get("/drf-open", headers={"X-API-Key": keys["revoked"]})
    assert revoked.status_code == 200
    assert revoked.json()["auth"] == "None"


def test_drfs_own_is_authenticated_gets_authmws_challenge(
    keys: dict[str, str], auth: Authenticator
) -> None:
    client = Client()
    refused = client.get("/drf-is-authenticated")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == MissingCredentials().www_authenticate(auth.settings.realm)
    ok = client.get("/drf-is-authenticated", headers={"X-API-Key": keys["admin"]})
    assert ok.json() == {"user": "admin"}


def test_default_permission_class_is_has_principal(auth: Authenticator) -> None:
    # The view names no permission classes: the settings' default applies.
    response = Client().get("/drf-default")
    rendered = MissingCredentials().render(auth.settings.realm)
    assert (response.status_code, response.content) == (rendered.status, rendered.body)


def test_the_drf_classes_need_the_middleware() -> None:
    # They read what the middleware recorded around the view; without it they say so.
    from django.test import RequestFactory  # noqa: PLC0415
    from rest_framework.request import Request  # noqa: PLC0415

    request = Request(RequestFactory().get("/"))
    with pytest.raises(RuntimeError, match="is authmw's middleware installed"):
        AuthmwAuthentication().authenticate(request)
    with pytest.raises(RuntimeError, match="is authmw's middleware installed"):
        HasRole("manager")().has_permission(request, None)
