"""Document authmw's OAuth2 flows in a FastAPI app's OpenAPI, so Swagger UI can run them.

>>> document_oauth2(app, scopes={"reports:read": "Read reports"})  # doctest: +SKIP

Every operation that already accepts an authmw credential (it declares the
``ApiKey`` or ``Bearer`` scheme through one of authmw's dependencies) also
lists an ``OAuth2`` scheme with two flows:

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

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

__all__ = ["OAUTH2_SCHEME", "document_oauth2"]

#: The name of the scheme in ``components.securitySchemes``.
OAUTH2_SCHEME = "OAuth2"
_AUTHMW_SCHEMES = frozenset({"ApiKey", "Bearer"})


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
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if security and any(_AUTHMW_SCHEMES & set(item) for item in security):
                    security.append({OAUTH2_SCHEME: []})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    init = dict(app.swagger_ui_init_oauth or {})
    init["usePkceWithAuthorizationCodeGrant"] = True
    if docs_client_id is not None:
        init["clientId"] = docs_client_id
    app.swagger_ui_init_oauth = init
