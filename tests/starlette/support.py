"""Helpers of the Starlette/FastAPI tests: the fixture world, an in-process client, an ASGI driver.

Users: ``admin`` (role admin, team blue), ``manager`` (role manager, team blue),
``employee`` (role employee, team red). Keys, by name:

* ``admin`` -- personal key of ``admin``: global;
* ``team_blue`` -- team service account of team ``blue``;
* ``restricted`` -- personal key of ``admin`` restricted to ``appointments:read``;
* ``revoked`` -- a personal key of ``admin``, revoked.

The user rows use real access tokens (:data:`MANAGER_TOKEN`, :data:`EMPLOYEE_TOKEN`),
verified by the real token path of the middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import httpx

from authmw import Authenticator
from tests.principals import (
    EMPLOYEE_TOKEN,
    MANAGER_TOKEN,
    build_authenticator,
    issue_keys,
)

__all__ = [
    "EMPLOYEE_TOKEN",
    "MANAGER_TOKEN",
    "MakeAuth",
    "Message",
    "build_authenticator",
    "client_for",
    "drive",
    "http_scope",
    "issue_keys",
    "ws_scope",
]

Message = MutableMapping[str, Any]
#: ``make_auth(store, settings=None)``: the fixture world on ``store``.
MakeAuth = Callable[..., Authenticator]


def client_for(app: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` talking to ``app`` in-process (use it in ``async with``)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# -- a minimal ASGI driver, for what an HTTP client cannot send (WebSocket, lifespan, raw bytes)


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """A GET scope for ``path`` with raw ``headers``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


def ws_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """A WebSocket scope for ``path`` with raw ``headers``."""
    return {**http_scope(path, headers), "type": "websocket", "scheme": "ws", "subprotocols": []}


async def drive(
    app: Any,
    scope: dict[str, Any],
    incoming: Sequence[Message],
    sent: list[Message] | None = None,
) -> list[Message]:
    """Run one ASGI connection: feed ``incoming``, then report a disconnect; return the sends.

    ``sent``, if given, collects the sends as they happen (for when the app raises).
    """
    out: list[Message] = [] if sent is None else sent
    queue = list(incoming)
    disconnects: dict[str, Message] = {
        "http": {"type": "http.disconnect"},
        "websocket": {"type": "websocket.disconnect", "code": 1000},
        "lifespan": {"type": "lifespan.shutdown"},
    }
    disconnect = disconnects[scope["type"]]

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(0)
        return dict(disconnect)

    async def send(message: Message) -> None:
        # Like every ASGI server: a second response start is a protocol error.
        if message["type"] == "http.response.start" and any(
            m["type"] == "http.response.start" for m in out
        ):
            raise RuntimeError("Unexpected ASGI message 'http.response.start' sent twice")
        out.append(dict(message))

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return out
