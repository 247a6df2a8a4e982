"""Document authmw's OAuth2 flows in a FastAPI app's OpenAPI, so Swagger UI can run them.

>>> document_oauth2(app, scopes={"reports:read": "Read reports"})  # doctest: +SKIP

Every operation that accepts an authmw credential lists an ``OAuth2`` scheme,
with the scopes its route requires, beside the ``ApiKey`` and ``Bearer``
schemes. A route guarded by a dependency declares those two itself; a route
guarded by a decorator (``@requires_role``...) declares nothing to FastAPI, so
they are added here, and Swagger UI sends the credential to it too. The
``OAuth2`` scheme has two flows:

* ``authorizationCode`` against ``/oauth/authorize`` and ``/oauth/token``, with
  PKCE: Swagger UI's *Authorize* button logs a user in through the consent page
  and gets a delegated token, acting as the public app ``docs_client_id``;
* ``clientCredentials`` against ``/oauth/token``, for a machine client's id and
  secret.

This only edits the OpenAPI document, once, when it is first built: nothing is
added to the request path (a security dependency per route would cost every
request a dependency resolution).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute

from authmw.decorators import Requirement, requirements_of
from authmw_starlette.fastapi import Requires, api_key_scheme, bearer_scheme

__all__ = ["OAUTH2_SCHEME", "document_oauth2"]

#: The name of the scheme in ``components.securitySchemes``.
OAUTH2_SCHEME = "OAuth2"
_SCHEMES = (api_key_scheme, bearer_scheme)
_AUTHMW_SCHEMES = frozenset(scheme.scheme_name for scheme in _SCHEMES)


def document_oauth2(
    app: FastAPI,
    *,
    scopes: Mapping[str, str],
    docs_client_id: str | None = None,
    authorization_url: str = "/oauth/authorize",
    token_url: str = "/oauth/token",  # noqa: S107 - a path, not a secret
) -> None:
    """Add authmw's OAuth2 flows to ``app``'s OpenAPI and set up Swagger UI's PKCE login.

    ``scopes`` maps each scope to the description Swagger UI shows.
    ``docs_client_id`` is a public app registered with the redirect URI
    ``<origin>/docs/oauth2-redirect``; without it, Swagger UI asks for a client id.
    """
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        flows = {
            "authorizationCode": {
                "authorizationUrl": authorization_url,
                "tokenUrl": token_url,
                "refreshUrl": token_url,
                "scopes": dict(scopes),
            },
            "clientCredentials": {"tokenUrl": token_url, "scopes": dict(scopes)},
        }
        components = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        components[OAUTH2_SCHEME] = {
            "type": "oauth2",
            "description": "A user's delegated token (authorization code with PKCE), "
            "or a machine client's token (client credentials).",
            "flows": flows,
        }
        guarded = _guarded_operations(app)
        if any(decorated for decorated, _ in guarded.values()):
            for scheme in _SCHEMES:
                # The definitions FastAPI writes for our dependencies, word for word.
                components.setdefault(
                    scheme.scheme_name,
                    jsonable_encoder(scheme.model, by_alias=True, exclude_none=True),
                )
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                decorated, required = guarded.get((path, method), (False, []))
                security = operation.get("security") or []
                if not any(_AUTHMW_SCHEMES & set(entry) for entry in security):
                    if not decorated:
                        continue  # not an authmw route: public, or someone else's scheme
                    security += [{scheme.scheme_name: []} for scheme in _SCHEMES]
                operation["security"] = [*security, {OAUTH2_SCHEME: required}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    init = dict(app.swagger_ui_init_oauth or {})
    init["usePkceWithAuthorizationCodeGrant"] = True
    if docs_client_id is not None:
        init["clientId"] = docs_client_id
    app.swagger_ui_init_oauth = init


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Yield the app's API routes as its OpenAPI document sees them, routers' included.

    Recent FastAPI releases keep an included router as one entry of ``app.routes``
    and walk it with ``iter_route_contexts`` (each context answers for its route,
    with the router's prefix and dependencies), as their own OpenAPI builder does;
    earlier ones copied every route into ``app.routes``.
    """
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in app.routes if walk is None else walk(app.routes):
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _guarded_operations(app: FastAPI) -> dict[tuple[str, str], tuple[bool, list[str]]]:
    """Map each guarded operation to (guarded by a decorator?, the scopes it requires)."""
    found: dict[tuple[str, str], tuple[bool, list[str]]] = {}
    for route in _api_routes(app):
        decorated = requirements_of(route.endpoint)
        requirements = [*decorated, *_dependency_requirements(route.dependant)]
        if not requirements:
            continue
        scopes = sorted({scope for r in requirements for scope in r.scopes})
        for method in route.methods or ():
            found[route.path_format, method.lower()] = (bool(decorated), scopes)
    return found


def _dependency_requirements(dependant: Dependant) -> Iterator[Requirement]:
    """Yield the requirements of authmw dependencies among ``dependant``'s, at any depth."""
    for sub in dependant.dependencies:
        if isinstance(sub.call, Requires):
            yield sub.call.requirement
        yield from _dependency_requirements(sub)
