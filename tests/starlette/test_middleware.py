"""The ASGI middleware under a real Starlette app: principal resolution, refusals, scopes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from authmw import Authenticator, AuthError, InsufficientScope, Settings
from authmw.store.sql import SQLStore
from authmw_starlette import AuthMiddleware, get_principal, requires_auth
from tests.starlette.support import Message, client_for, drive, http_scope, ws_scope

pytestmark = pytest.mark.anyio


BARE_CHALLENGE = 'Bearer realm="api", apikey realm="api"'


async def whoami(request: Request) -> Response:
    principal = get_principal(request)
    error = request.state.auth_error
    return JSONResponse(
        {
            "principal": None if principal is None else principal.to_json(),
            "error": None if error is None else type(error).__name__,
        }
    )


async def text(request: Request) -> Response:
    return PlainTextResponse(request.url.path)


async def raises(request: Request) -> Response:
    raise InsufficientScope(frozenset({"reports:read"}))


@requires_auth()
async def protected_stream(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"first chunk"
        # An AuthError after the response started cannot become a 4xx any more.
        raise InsufficientScope(frozenset({"late"}))

    return StreamingResponse(body())


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    principal = get_principal(websocket)
    await websocket.send_text("anonymous" if principal is None else principal.subject)
    await websocket.close()


def make_app(auth: Authenticator, **options: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/health", text),
            Route("/docs", text),
            Route("/docs/oauth2-redirect", text),
            Route("/health/details", text),
            Route("/raise", raises),
            Route("/stream", protected_stream),
            WebSocketRoute("/ws", ws_echo),
            WebSocketRoute("/ws/protected", requires_auth()(ws_echo)),
        ],
        middleware=[Middleware(AuthMiddleware, authenticator=auth, **options)],
    )


def challenge(headers: httpx.Headers) -> str | None:
    value: str | None = headers.get("www-authenticate")
    return value


# -- resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "template"),
    [
        ("Authorization", "apikey {}"),
        ("Authorization", "Bearer {}"),
        ("X-API-Key", "{}"),
        # Scheme names are case-insensitive (RFC 9110 section 11.1).
        ("Authorization", "APIKEY {}"),
        ("Authorization", "bearer {}"),
        ("x-api-key", "  {}  "),
    ],
)
async def test_valid_key_sets_principal_in_every_header_style(
    auth: Authenticator,
    keys: dict[str, str],
    header: str,
    template: str,
) -> None:
    async with client_for(make_app(auth)) as client:
        response = await client.get("/whoami", headers={header: template.format(keys["admin"])})
    assert response.status_code == 200
    principal = response.json()["principal"]
    assert principal["kind"] == "api_key"
    assert principal["subject"] == "admin"
    assert response.json()["error"] is None


async def test_anonymous_request_passes_with_principal_none(auth: Authenticator) -> None:
    async with client_for(make_app(auth)) as client:
        response = await client.get("/whoami")
    assert response.status_code == 200
    assert response.json() == {"principal": None, "error": None}


async def test_foreign_scheme_counts_as_no_credential(auth: Authenticator) -> None:
    async with client_for(make_app(auth)) as client:
        response = await client.get("/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.json() == {"principal": None, "error": None}


@pytest.mark.parametrize(
    ("credential", "error"),
    [
        ("revoked", "InvalidToken"),
        ("garbage", "InvalidToken"),
        ("malformed", "InvalidRequest"),
    ],
)
async def test_bad_credential_on_public_route_reaches_route_with_error(
    auth: Authenticator,
    keys: dict[str, str],
    credential: str,
    error: str,
) -> None:
    values = {
        "revoked": f"Bearer {keys['revoked']}",
        "garbage": "Bearer amk_notakey",
        "malformed": "Bearer a b",
    }
    async with client_for(make_app(auth)) as client:
        response = await client.get("/whoami", headers={"Authorization": values[credential]})
    assert response.status_code == 200
    assert response.json() == {"principal": None, "error": error}


async def test_context_does_not_leak_into_the_next_request(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    async with client_for(make_app(auth)) as client:
        first = await client.get("/whoami", headers={"X-API-Key": keys["admin"]})
        second = await client.get("/whoami")
    assert first.json()["principal"]["subject"] == "admin"
    assert second.json()["principal"] is None


# -- require_auth ----------------------------------------------------------------------------

PUBLIC = ["/health", "/docs*"]


@pytest.mark.parametrize("path", ["/health", "/docs", "/docs/oauth2-redirect"])
async def test_require_auth_lets_public_paths_through(auth: Authenticator, path: str) -> None:
    async with client_for(make_app(auth, require_auth=True, public_paths=PUBLIC)) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.text == path


@pytest.mark.parametrize("path", ["/whoami", "/health/details", "/nowhere"])
async def test_require_auth_refuses_other_paths_without_credential(
    auth: Authenticator, path: str
) -> None:
    async with client_for(make_app(auth, require_auth=True, public_paths=PUBLIC)) as client:
        response = await client.get(path)
    assert response.status_code == 401
    assert challenge(response.headers) == BARE_CHALLENGE
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "missing_credentials",
        "error_description": "This endpoint requires authentication.",
    }
    assert int(response.headers["content-length"]) == len(response.content)


async def test_require_auth_refuses_revoked_key_with_invalid_token(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    async with client_for(make_app(auth, require_auth=True, public_paths=PUBLIC)) as client:
        response = await client.get("/whoami", headers={"X-API-Key": keys["revoked"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    value = challenge(response.headers)
    assert value is not None
    assert value.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert ', apikey realm="api", error="invalid_token"' in value
    # The key itself is never echoed.
    assert keys["revoked"] not in response.text
    assert keys["revoked"] not in value


async def test_require_auth_admits_valid_key(auth: Authenticator, keys: dict[str, str]) -> None:
    async with client_for(make_app(auth, require_auth=True, public_paths=PUBLIC)) as client:
        response = await client.get("/whoami", headers={"Authorization": f"apikey {keys['admin']}"})
    assert response.status_code == 200
    assert response.json()["principal"]["subject"] == "admin"


async def test_public_path_with_bad_credential_still_reaches_route(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = make_app(auth, require_auth=True, public_paths=["/whoami"])
    async with client_for(app) as client:
        response = await client.get("/whoami", headers={"X-API-Key": keys["revoked"]})
    assert response.status_code == 200
    assert response.json() == {"principal": None, "error": "InvalidToken"}


async def test_realm_comes_from_settings(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(SQLStore("sqlite://"), Settings(realm="example"))
    async with client_for(make_app(auth, require_auth=True)) as client:
        response = await client.get("/whoami")
    assert challenge(response.headers) == 'Bearer realm="example", apikey realm="example"'


def test_public_paths_must_be_absolute(auth: Authenticator) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        make_app(auth, public_paths=["health"]).build_middleware_stack()


# -- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Authorization", b"Bearer")],
        [(b"Authorization", b"Bearer ")],
        [(b"Authorization", b"Bearer a b")],
        [(b"Authorization", b"apikey a,b")],
        [(b"Authorization", "Bearer clé".encode())],
        [(b"Authorization", b"Bearer \xff\xfe")],
        [(b"X-API-Key", b"\xc3\xa9t\xc3\xa9")],
        [(b"X-API-Key", b"two words")],
        [(b"X-API-Key", b"")],
        [(b"Authorization", b"Bearer " + b"a" * 9000)],
        [(b"X-API-Key", b"a" * 8193)],
    ],
    ids=[
        "bearer-no-token",
        "bearer-empty",
        "bearer-two-tokens",
        "apikey-comma",
        "utf8",
        "non-ascii-bytes",
        "x-api-key-utf8",
        "x-api-key-space",
        "x-api-key-empty",
        "over-8kb",
        "x-api-key-over-8kb",
    ],
)
async def test_malformed_credential_is_400_never_500(
    auth: Authenticator, headers: list[tuple[bytes, bytes]]
) -> None:
    async with client_for(make_app(auth, require_auth=True)) as client:
        refused = await client.get("/whoami", headers=headers)
    async with client_for(make_app(auth)) as client:
        public = await client.get("/whoami", headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    value = challenge(refused.headers)
    assert value is not None
    assert 'error="invalid_request"' in value
    assert public.status_code == 200
    assert public.json() == {"principal": None, "error": "InvalidRequest"}


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Authorization", b"Bearer {key}"), (b"X-API-Key", b"{key}")],
        [(b"Authorization", b"Bearer {key}"), (b"Authorization", b"apikey {key}")],
        [(b"X-API-Key", b"{key}"), (b"X-API-Key", b"{key}")],
    ],
    ids=["authorization-and-x-api-key", "two-authorization", "two-x-api-key"],
)
async def test_two_credentials_are_400_invalid_request(
    auth: Authenticator,
    keys: dict[str, str],
    headers: list[tuple[bytes, bytes]],
) -> None:
    key = keys["admin"].encode()
    sent = [(name, value.replace(b"{key}", key)) for name, value in headers]
    async with client_for(make_app(auth, require_auth=True)) as client:
        response = await client.get("/whoami", headers=sent)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": (
            "Send exactly one credential: one Authorization header or one X-API-Key header."
        ),
    }


# Header values as raw bytes, driven straight into the ASGI app (no HTTP client in
# between to tidy them up): whatever arrives, the answer is 200, 400 or 401, never 500.
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from([b"authorization", b"x-api-key"]),
    prefix=st.sampled_from([b"", b"Bearer ", b"bearer", b"apikey ", b"APIKEY  ", b"Basic "]),
    value=st.binary(max_size=64) | st.binary(min_size=8180, max_size=8200),
)
def test_arbitrary_header_bytes_never_cause_500(
    *,
    auth: Authenticator,
    name: bytes,
    prefix: bytes,
    value: bytes,
) -> None:
    app = make_app(auth, require_auth=True)
    scope = http_scope("/whoami", [(name, prefix + value)])
    messages = asyncio.run(drive(app, scope, [{"type": "http.request", "body": b""}]))
    assert messages[0]["type"] == "http.response.start"
    assert messages[0]["status"] in (200, 400, 401)


# -- errors raised by the app --------------------------------------------------------------


async def test_auth_error_raised_in_route_is_rendered_as_json(auth: Authenticator) -> None:
    async with client_for(make_app(auth)) as client:
        response = await client.get("/raise")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert challenge(response.headers) == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The credential lacks a scope this endpoint requires.", '
        'scope="reports:read", '
        'apikey realm="api", error="insufficient_scope", '
        'error_description="The credential lacks a scope this endpoint requires.", '
        'scope="reports:read"'
    )
    assert json.loads(response.content) == {
        "error": "insufficient_scope",
        "error_description": "The credential lacks a scope this endpoint requires.",
        "scope": "reports:read",
    }


async def test_middleware_added_with_add_middleware_renders_errors_too(auth: Authenticator) -> None:
    app = Starlette(routes=[Route("/raise", raises)])
    app.add_middleware(AuthMiddleware, authenticator=auth)
    async with client_for(app) as client:
        response = await client.get("/raise")
    assert response.status_code == 403
    assert response.json()["scope"] == "reports:read"


def _routes() -> list[Route | WebSocketRoute]:
    return [
        Route("/raise", raises),
        Route("/protected", requires_auth()(text)),
        WebSocketRoute("/ws/protected", requires_auth()(ws_echo)),
    ]


@pytest.mark.parametrize("path", ["/raise", "/protected"])
async def test_middleware_wrapped_around_the_app_renders_the_same_bytes(
    auth: Authenticator, path: str
) -> None:
    # Wrapped from outside, Starlette's own error layer sits inside the middleware
    # and would answer 500 first: the app gets a handler that renders as it does.
    inside = Starlette(
        routes=_routes(), middleware=[Middleware(AuthMiddleware, authenticator=auth)]
    )
    outside = AuthMiddleware(Starlette(routes=_routes()), authenticator=auth)
    async with client_for(inside) as a, client_for(outside, raise_app_exceptions=False) as b:
        expected, got = await a.get(path), await b.get(path)
    assert expected.status_code in (401, 403)
    assert (got.status_code, got.headers.raw, got.content) == (
        expected.status_code,
        expected.headers.raw,
        expected.content,
    )


async def test_middleware_wrapped_around_the_app_closes_a_refused_websocket(
    auth: Authenticator,
) -> None:
    outside = AuthMiddleware(Starlette(routes=_routes()), authenticator=auth)
    sent = await drive(outside, ws_scope("/ws/protected", []), [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


async def test_an_apps_own_auth_error_handler_is_kept(auth: Authenticator) -> None:
    async def teapot(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("mine", status_code=418)

    app = Starlette(routes=_routes(), exception_handlers={AuthError: teapot})
    async with client_for(AuthMiddleware(app, authenticator=auth)) as client:
        response = await client.get("/protected")
    assert (response.status_code, response.text) == (418, "mine")


async def test_auth_error_after_response_started_is_not_a_second_response(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    # The status line is gone; all the middleware can do is let the server see the
    # error (and drop the connection), never send a second response start.
    scope = http_scope("/stream", [(b"x-api-key", keys["admin"].encode())])
    sent: list[Message] = []
    with pytest.raises(Exception) as caught:  # noqa: PT011 - checked just below
        await drive(make_app(auth), scope, [{"type": "http.request", "body": b""}], sent)
    # Starlette before 0.41 wraps an error of a streamed body in an ExceptionGroup.
    error = caught.value
    if isinstance(error, BaseExceptionGroup):
        assert error.subgroup(InsufficientScope) is not None, error
    else:
        assert isinstance(error, InsufficientScope), error
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [200]


# -- other ASGI scopes ------------------------------------------------------------------------


async def test_lifespan_scope_passes_through_untouched(auth: Authenticator) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"db": "ready"}
        events.append("shutdown")

    app = Starlette(
        lifespan=lifespan,
        middleware=[Middleware(AuthMiddleware, authenticator=auth, require_auth=True)],
    )
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    sent = await drive(app, scope, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert events == ["startup", "shutdown"]
    assert scope["state"] == {"db": "ready"}


async def test_websocket_with_valid_key_is_accepted(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    scope = ws_scope("/ws", [(b"x-api-key", keys["admin"].encode())])
    sent = await drive(make_app(auth, require_auth=True), scope, [{"type": "websocket.connect"}])
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None, "headers": []}
    assert sent[1] == {"type": "websocket.send", "text": "admin"}


async def test_anonymous_websocket_passes_without_require_auth(auth: Authenticator) -> None:
    sent = await drive(make_app(auth), ws_scope("/ws", []), [{"type": "websocket.connect"}])
    assert sent[0]["type"] == "websocket.accept"
    assert sent[1] == {"type": "websocket.send", "text": "anonymous"}


@pytest.mark.parametrize("credential", ["none", "revoked", "malformed"])
async def test_websocket_without_valid_credential_is_closed_with_1008(
    auth: Authenticator, keys: dict[str, str], credential: str
) -> None:
    headers = {
        "none": [],
        "revoked": [(b"authorization", f"Bearer {keys['revoked']}".encode())],
        "malformed": [(b"authorization", b"Bearer a b")],
    }[credential]
    app = make_app(auth, require_auth=True, public_paths=PUBLIC)
    sent = await drive(app, ws_scope("/ws", headers), [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_decorated_websocket_endpoint_refuses_with_1008(auth: Authenticator) -> None:
    # No require_auth: the decorator refuses, before the handshake is accepted.
    sent = await drive(
        make_app(auth), ws_scope("/ws/protected", []), [{"type": "websocket.connect"}]
    )
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_decorated_websocket_endpoint_admits_valid_key(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    scope = ws_scope("/ws/protected", [(b"authorization", f"apikey {keys['team_blue']}".encode())])
    sent = await drive(make_app(auth), scope, [{"type": "websocket.connect"}])
    assert sent[0]["type"] == "websocket.accept"
    assert sent[1] == {"type": "websocket.send", "text": "team:blue"}


# -- behind a proxy: root_path -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/health", 200),
        ("/api/docs/oauth2-redirect", 200),
        ("/api/whoami", 401),
        # Only the root path itself is stripped: "/apihealth" is not "/api" + "/health".
        ("/apihealth", 401),
    ],
)
async def test_public_paths_are_route_paths_under_a_root_path(
    auth: Authenticator, path: str, status: int
) -> None:
    # Served under a prefix (``uvicorn --root-path /api``), the ASGI path carries the
    # prefix and Starlette routes on what follows it; public_paths name routes too.
    app = make_app(auth, require_auth=True, public_paths=PUBLIC)
    transport = httpx.ASGITransport(app=app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(path)
    assert response.status_code == status
