"""authmw.asgi: the ASGI middleware around a hand-written ASGI app, no framework."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from authmw import Authenticator, Settings
from authmw.asgi import AuthMiddleware, Message, Receive, Scope, Send
from authmw.context import RequestAuth, current
from authmw.decorators import Requirement, guard, requirements_of
from authmw.errors import (
    AuthError,
    Forbidden,
    InsufficientRole,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    ServiceUnavailable,
)
from authmw.store.sql import SQLStore, metadata
from tests.conftest import AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.support import CountingStore


def _path_params(auth: RequestAuth, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    params: Mapping[str, Any] = auth.request.get("path_params", {})
    return params


@guard(Requirement.build(roles={"manager"}), _path_params)
async def reports() -> dict[str, Any]:
    return {"reports": []}


@guard(Requirement.build(team_param="team"), _path_params)
async def team_usage() -> dict[str, Any]:
    return {"usage": 0}


class App:
    """A minimal ASGI app: records what it saw, routes a few paths."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.loop_threads: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        self.loop_threads.append(threading.get_ident())
        if scope["type"] == "lifespan":
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        if path == "/raise":
            raise Forbidden()
        if path == "/raise-late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise Forbidden()
        if path == "/reports":
            payload = await reports()
        elif path.startswith("/teams/"):
            scope["path_params"] = {"team": path.split("/")[2]}
            payload = await team_usage()
        else:
            state = scope["state"]
            assert current().principal is state["principal"]
            principal = state["principal"]
            error = state["auth_error"]
            payload = {
                "principal": principal.to_json() if principal else None,
                "error": type(error).__name__ if error else None,
            }
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


Headers = Sequence[tuple[str, str] | tuple[bytes, bytes]]


def call(
    middleware: AuthMiddleware,
    path: str = "/me",
    headers: Headers = (),
    *,
    kind: str = "http",
    state: dict[str, Any] | None = None,
    root_path: str = "",
) -> tuple[list[Message], Scope]:
    raw = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        if isinstance(k, str) and isinstance(v, str)
        else (k, v)
        for k, v in headers
    ]
    scope: Scope = {"type": kind, "path": path, "headers": raw, "root_path": root_path}
    if state is not None:
        scope["state"] = state
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        # As every ASGI server does, refuse a second response start.
        if message["type"] == "http.response.start" and any(
            m["type"] == "http.response.start" for m in sent
        ):
            raise RuntimeError("http.response.start sent twice")
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent, scope


def body_json(sent: list[Message]) -> Any:
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    return json.loads(sent[1]["body"])


def assert_rendered(sent: list[Message], error: AuthError, realm: str = "api") -> None:
    """The response is ``error.render()`` byte for byte, plus a Content-Length."""
    rendered = error.render(realm)
    start, body = sent
    assert start["type"] == "http.response.start"
    assert start["status"] == rendered.status
    expected = [(k.lower().encode(), v.encode()) for k, v in rendered.headers]
    expected.append((b"content-length", str(len(rendered.body)).encode()))
    assert start["headers"] == expected
    assert body == {"type": "http.response.body", "body": rendered.body}


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def admin_key(authenticator: Authenticator) -> str:
    return authenticator.keys.create(name="a", owner="admin").key


# -- passing through --------------------------------------------------------------------------


def test_anonymous_request_passes(authenticator: Authenticator, app: App) -> None:
    sent, scope = call(AuthMiddleware(app, authenticator))
    assert body_json(sent) == {"principal": None, "error": None}
    assert scope["state"] == {"principal": None, "auth_error": None}


@pytest.mark.parametrize(
    "header",
    [("authorization", "apikey {}"), ("authorization", "Bearer {}"), ("x-api-key", "{}")],
    ids=["apikey", "bearer", "x-api-key"],
)
def test_principal_is_put_in_the_scope_state(
    authenticator: Authenticator, app: App, admin_key: str, header: tuple[str, str]
) -> None:
    name, value = header
    sent, scope = call(
        AuthMiddleware(app, authenticator), headers=[(name, value.format(admin_key))]
    )
    assert body_json(sent)["principal"]["subject"] == "admin"
    assert scope["state"]["principal"].kind == "api_key"
    assert scope["state"]["auth_error"] is None


def test_bad_credentials_are_stashed(authenticator: Authenticator, app: App) -> None:
    middleware = AuthMiddleware(app, authenticator)
    sent, scope = call(middleware, headers=[("x-api-key", "amk_bogus")])
    assert body_json(sent) == {"principal": None, "error": "InvalidToken"}
    sent, scope = call(middleware, headers=[(b"authorization", b"Bearer caf\xc3\xa9")])
    assert body_json(sent) == {"principal": None, "error": "InvalidRequest"}
    sent, scope = call(middleware, headers=[("authorization", "Bearer a"), ("x-api-key", "b")])
    assert isinstance(scope["state"]["auth_error"], InvalidRequest)


def test_existing_state_is_kept(authenticator: Authenticator, app: App) -> None:
    _, scope = call(AuthMiddleware(app, authenticator), state={"db": "session"})
    assert scope["state"]["db"] == "session"
    assert scope["state"]["principal"] is None


def test_lifespan_passes_through_untouched(authenticator: Authenticator, app: App) -> None:
    sent, scope = call(AuthMiddleware(app, authenticator, require_auth=True), kind="lifespan")
    assert sent == []
    assert app.scopes == [scope]
    assert "state" not in scope


def test_lifespan_shutdown_writes_key_usage_before_it_completes(
    authenticator: Authenticator,
) -> None:
    # Some servers end the process by signal right after the lifespan shutdown,
    # with no exit hook: the last batch of key usage must be written by then.
    issued = authenticator.keys.create(name="k", owner="admin")
    used_at_completion: list[object] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    async def serve() -> None:
        middleware = AuthMiddleware(lifespan_app, authenticator)
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> Message:
            return next(messages)

        async def send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                used_at_completion.append(authenticator.keys.get(issued.record.id).last_used_at)

        # A request first, so a use is pending when the server stops.
        sent: list[Message] = []

        async def collect(message: Message) -> None:
            sent.append(message)

        http: Scope = {
            "type": "http",
            "path": "/me",
            "headers": [(b"x-api-key", issued.key.encode())],
            "root_path": "",
        }

        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await AuthMiddleware(App(), authenticator)(http, no_body, collect)
        assert sent[0]["status"] == 200
        assert authenticator.keys.get(issued.record.id).last_used_at is None
        await middleware({"type": "lifespan"}, receive, send)

    asyncio.run(serve())
    assert len(used_at_completion) == 1
    assert used_at_completion[0] is not None


def test_context_is_reset_after_the_request(authenticator: Authenticator, app: App) -> None:
    call(AuthMiddleware(app, authenticator))
    with pytest.raises(RuntimeError):
        current()


def test_store_is_called_off_the_event_loop(
    make_authenticator: AuthenticatorFactory, app: App
) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting)
    key = auth.keys.create(name="k", owner="admin").key
    sent, _ = call(AuthMiddleware(app, auth), headers=[("x-api-key", key)])
    assert body_json(sent)["principal"]["subject"] == "admin"
    assert app.loop_threads[0] not in counting.threads("find_key")


# -- errors ---------------------------------------------------------------------------------


def test_guarded_routes(authenticator: Authenticator, app: App, admin_key: str) -> None:
    middleware = AuthMiddleware(app, authenticator)
    sales = authenticator.keys.create(name="s", team="sales").key
    reader = authenticator.keys.create(name="r", team="sales", scopes=["appointments:read"]).key
    assert body_json(call(middleware, "/reports", [("x-api-key", admin_key)])[0]) == {"reports": []}
    assert body_json(call(middleware, "/teams/sales/usage", [("x-api-key", sales)])[0]) == {
        "usage": 0
    }
    assert_rendered(call(middleware, "/reports", [("x-api-key", reader)])[0], InsufficientRole())
    wrong_team = Forbidden("This credential is not allowed to act for this team.")
    assert_rendered(call(middleware, "/teams/ops/usage", [("x-api-key", sales)])[0], wrong_team)
    assert_rendered(call(middleware, "/reports")[0], MissingCredentials())
    assert_rendered(call(middleware, "/reports", [("x-api-key", "amk_x")])[0], InvalidToken())


def test_auth_error_raised_by_the_app_is_rendered(authenticator: Authenticator, app: App) -> None:
    sent, _ = call(AuthMiddleware(app, authenticator), "/raise")
    assert_rendered(sent, Forbidden())


def test_auth_error_after_the_response_started_is_not_answered_twice(
    authenticator: Authenticator, app: App
) -> None:
    # A second http.response.start would break the protocol: the error goes to the server.
    with pytest.raises(Forbidden):
        call(AuthMiddleware(app, authenticator), "/raise-late")


def test_public_paths_are_routes_below_the_root_path(
    authenticator: Authenticator, app: App
) -> None:
    # Served at /api by a proxy: the ASGI path carries the prefix, routes do not.
    middleware = AuthMiddleware(app, authenticator, require_auth=True, public_paths=["/health"])
    assert body_json(call(middleware, "/api/health", root_path="/api")[0])["principal"] is None
    assert call(middleware, "/api/me", root_path="/api")[0][0]["status"] == 401
    assert call(middleware, "/apihealth", root_path="/api")[0][0]["status"] == 401


def test_require_auth(authenticator: Authenticator, app: App, admin_key: str) -> None:
    middleware = AuthMiddleware(
        app, authenticator, require_auth=True, public_paths=["/health", "/docs*"]
    )
    assert_rendered(call(middleware, "/me")[0], MissingCredentials())
    assert app.scopes == [], "a refused request never reaches the app"
    assert_rendered(call(middleware, "/me", [("x-api-key", "amk_x")])[0], InvalidToken())
    sent, _ = call(middleware, "/me", [(b"x-api-key", b"\xff")])
    assert_rendered(sent, InvalidRequest("The X-API-Key header is malformed."))
    assert body_json(call(middleware, "/me", [("x-api-key", admin_key)])[0])["principal"]
    for public in ("/health", "/docs", "/docs/x"):
        assert body_json(call(middleware, public)[0]) == {"principal": None, "error": None}
    for private in ("/health/x", "/doc", "/"):
        assert call(middleware, private)[0][0]["status"] == 401


def test_store_down_is_503(make_authenticator: AuthenticatorFactory, tmp_path: Path) -> None:
    auth = make_authenticator(sqlite_file_url(tmp_path), settings=Settings(cache_ttl=0))
    key = auth.keys.create(name="k", owner="admin").key
    store = auth.store
    assert isinstance(store, SQLStore)
    metadata.drop_all(store.engine)
    sent, _ = call(AuthMiddleware(App(), auth, require_auth=True), headers=[("x-api-key", key)])
    assert_rendered(sent, ServiceUnavailable())
    assert (b"retry-after", b"1") in sent[0]["headers"]


def test_realm_comes_from_the_settings(make_authenticator: AuthenticatorFactory) -> None:
    auth = make_authenticator(settings=Settings(realm="billing"), seed=False)
    sent, _ = call(AuthMiddleware(App(), auth, require_auth=True))
    assert_rendered(sent, MissingCredentials(), realm="billing")


# -- websockets ------------------------------------------------------------------------------


def test_websocket_refused_with_policy_violation(authenticator: Authenticator, app: App) -> None:
    sent, _ = call(AuthMiddleware(app, authenticator, require_auth=True), "/ws", kind="websocket")
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert app.scopes == []


def test_websocket_with_a_key_is_accepted(
    authenticator: Authenticator, app: App, admin_key: str
) -> None:
    sent, scope = call(
        AuthMiddleware(app, authenticator, require_auth=True),
        "/ws",
        [("x-api-key", admin_key)],
        kind="websocket",
    )
    assert sent[0] == {"type": "websocket.accept"}
    assert scope["state"]["principal"].subject == "admin"


# -- what a guard tells documentation ---------------------------------------------------------


def test_a_guarded_view_lists_what_its_guards_check_innermost_first() -> None:
    role, scope = Requirement.build(roles={"manager"}), Requirement.build(scopes={"reports:read"})

    def view() -> str:
        return "ok"

    guarded = guard(scope, _path_params)(guard(role, _path_params)(view))
    assert requirements_of(guarded) == (role, scope)
    assert requirements_of(view) == ()  # the view itself is left as it was
    assert requirements_of(guard(role, _path_params)(view)) == (role,)
