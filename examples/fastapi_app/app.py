"""The authmw demo API on FastAPI.

Every route of the demo is protected by one of authmw's FastAPI dependencies, so
``/docs`` shows an Authorize button for both ways of sending a credential.

``authmw demo`` serves it on a seeded database, with authmw's OAuth2 endpoints
(``POST /oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``, the login and
consent pages at ``/oauth/authorize``, ``/oauth/consents`` and the server
metadata) in front. To serve it on your own::

    authmw init
    uvicorn authmw_examples.fastapi_app.app:create_app --factory
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from authmw import Authenticator, Principal
from authmw.demo import DOCS_APP_NAME, SCOPE_DESCRIPTIONS
from authmw.oauth2 import AuthEndpoints
from authmw_starlette import AuthMiddleware
from authmw_starlette.fastapi import (
    CurrentPrincipal,
    RequireAuth,
    RequireRole,
    RequireScope,
    RequireTeam,
)
from authmw_starlette.openapi import document_oauth2

from ..fastapi_style import ERROR_KEYS

router = APIRouter()


def get_authenticator(request: Request) -> Authenticator:
    """Return the app's authenticator, for routes that manage accounts."""
    auth: Authenticator = request.app.state.authenticator
    return auth


class AppSettings(BaseModel):
    """Settings an administrator may change."""

    maintenance_mode: bool = False


class PasswordChange(BaseModel):
    """The body of ``POST /account/password``."""

    current_password: str
    new_password: str


@router.get("/health")
async def health() -> dict[str, str]:
    """Report that the service is up. Public: no credential needed."""
    return {"status": "ok"}


@router.get("/me")
async def me(principal: CurrentPrincipal) -> dict[str, Any]:
    """Return the caller as authmw resolved it. Any valid credential."""
    return principal.to_json()


@router.get("/catalog", dependencies=[Depends(RequireAuth())])
async def catalog() -> dict[str, list[str]]:
    """List the services offered: global master data, for any valid credential."""
    return {"services": ["check-up", "consultation", "follow-up"]}


@router.get("/reports")
async def reports(
    principal: Annotated[Principal, Depends(RequireRole("manager"))],
) -> dict[str, Any]:
    """List the reports. Role manager (or above)."""
    return {"reports": ["monthly-revenue", "no-shows"], "requested_by": principal.subject}


@router.post("/admin/settings", dependencies=[Depends(RequireRole("admin"))])
async def update_settings(settings: AppSettings | None = None) -> dict[str, Any]:
    """Change the application settings. Role admin."""
    return {"saved": (settings or AppSettings()).model_dump()}


@router.get("/appointments", dependencies=[Depends(RequireScope("appointments:read"))])
async def appointments() -> dict[str, list[dict[str, str]]]:
    """List the appointments. Scope ``appointments:read``."""
    return {"appointments": [{"id": "a1", "at": "2030-01-07T09:30:00Z", "service": "check-up"}]}


@router.get("/teams/{team}/usage", dependencies=[Depends(RequireTeam("team"))])
async def team_usage(team: str) -> dict[str, Any]:
    """Show a team's usage, to credentials that may act for that team."""
    return {"team": team, "requests_this_month": 1234}


@router.post("/account/password")
def change_password(
    change: PasswordChange,
    request: Request,
    principal: Annotated[Principal, Depends(RequireAuth(kinds={"user"}))],
    auth: Annotated[Authenticator, Depends(get_authenticator)],
) -> dict[str, str]:
    """Change the caller's own password. User tokens only: an API key has no password.

    A plain ``def``: FastAPI runs it in a worker thread, so the deliberately
    slow password hashing never blocks the event loop. Wrong current passwords
    count in the login throttle, per account and, given the address, per client.
    """
    address = auth.client_address(
        request.client.host if request.client else None,
        ",".join(request.headers.getlist("x-forwarded-for")) or None,
    )
    auth.users.change_password(
        principal.subject, change.current_password, change.new_password, address=address
    )
    # Changing the password ends the user's tokens, this one included.
    return {"status": "password changed; sign in again"}


async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer a request FastAPI refused as its own handler does, but never echo the request.

    FastAPI's handler shows pydantic's whole entry, ``input`` included: the
    password of a body with one field missing. Each entry keeps only
    :data:`~authmw_examples.fastapi_style.ERROR_KEYS` (``type``, ``loc``, ``msg``),
    which the Flask and Django demos answer with too. ``msg`` is pydantic's fixed
    text for every error these models raise; a model with a validator whose message
    quotes its value would need more than this.
    """
    detail = [{k: error[k] for k in ERROR_KEYS if k in error} for error in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(authenticator: Authenticator | None = None) -> FastAPI:
    """Build the demo app; without an authenticator, configure one from the environment."""
    auth = authenticator or Authenticator.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if authenticator is None:  # close only what this function opened
            auth.close()

    # No redirect from "/reports/" to "/reports": a trailing slash is another path,
    # a 404 as in the Flask and Django demos (FastAPI answers it with a 307 by default).
    app = FastAPI(title="authmw demo API", lifespan=lifespan, redirect_slashes=False)
    app.state.authenticator = auth
    app.exception_handler(RequestValidationError)(validation_failed)
    app.add_middleware(AuthMiddleware, authenticator=auth)
    # The OAuth2 endpoints (/oauth/token, /oauth/authorize, ...) wrap the app from
    # outside, so the token endpoint never needs a credential to be reached.
    endpoints = AuthEndpoints(
        auth, platform_name="authmw demo", scope_descriptions=SCOPE_DESCRIPTIONS
    )
    app.add_middleware(endpoints.asgi)
    app.include_router(router)
    # Swagger UI's Authorize button runs the authorization-code flow (with PKCE,
    # as the public app the demo registered) and the client-credentials flow.
    document_oauth2(app, scopes=SCOPE_DESCRIPTIONS, docs_client_id=_docs_client_id(auth))
    return app


def _docs_client_id(auth: Authenticator) -> str | None:
    """Return the public app the demo registered for Swagger UI, if the database has it."""
    for client in auth.clients.list(kind="app"):
        if client.public and client.name == DOCS_APP_NAME and not client.disabled:
            return client.id
    return None
