"""ASGI middleware: resolve the credential, put the principal in ``scope["state"]``.

Starlette and FastAPI read it as ``request.state.principal``. Anonymous requests
pass through with ``principal = None`` unless ``require_auth=True``, which
refuses every path not listed in ``public_paths``. An :class:`~authmw.errors.AuthError`
raised further in (by a decorator or dependency, before the response starts) is
rendered here, so every framework answers with the same bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from authmw._paths import PublicPaths, route_path
from authmw.authenticator import Authenticator
from authmw.context import _current
from authmw.credentials import asgi_raw
from authmw.errors import AuthError, MissingCredentials
from authmw.principal import Principal

__all__ = ["WS_POLICY_VIOLATION", "AuthMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The close code of a refused WebSocket (RFC 6455 section 7.4.1: 1008, policy
#: violation), the closest a WebSocket gets to 401/403.
WS_POLICY_VIOLATION = 1008


class AuthMiddleware:
    """Authenticate every HTTP and WebSocket request of an ASGI app."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        *,
        require_auth: bool = False,
        public_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.require_auth = require_auth
        self.public_paths = PublicPaths(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] not in ("http", "websocket"):
            if scope["type"] == "lifespan":
                send = self._flushing_at_shutdown(send)
            await self.app(scope, receive, send)
            return
        principal: Principal | None = None
        error: AuthError | None = None
        auth = self.authenticator
        try:
            raw = asgi_raw(scope["headers"])
            if raw is not None:
                # Warm: one dict lookup, no coroutine. Cold: parse and verify.
                principal = auth.lookup_raw(raw)
                if principal is None:
                    principal = await auth.authenticate_raw_async(raw)
        except AuthError as exc:
            error = exc
        # Servers put the lifespan state's copy in every scope: setdefault would
        # build an empty dict on every request only to drop it.
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["principal"] = principal
        state["auth_error"] = error
        if principal is None and self.require_auth and route_path(scope) not in self.public_paths:
            await self._refuse(error or MissingCredentials(), scope, send)
            return
        token = _current.set((auth, principal, error, scope))
        try:
            await self.app(scope, receive, send)
        except AuthError as exc:
            try:
                await self._refuse(exc, scope, send)
            except Exception:
                # The response had already started (an error raised mid-stream):
                # the server refuses a second start. Re-raise the original error
                # so the server logs it and drops the connection. Detecting this
                # by wrapping ``send`` would tax every request for a case this rare.
                raise exc from None
        finally:
            _current.reset(token)

    def _flushing_at_shutdown(self, send: Send) -> Send:
        """Wrap a lifespan ``send`` to write pending key usage once the app has shut down.

        Some servers (uvicorn among them) re-raise the signal that stopped them
        after the lifespan shutdown, so the process ends without running exit
        hooks: this is the last moment ``last_used_at`` can be written.
        """

        async def send_flushing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.authenticator.flush_usage_async()
            await send(message)

        return send_flushing

    async def _refuse(self, error: AuthError, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        rendered = error.render(self.authenticator.settings.realm)
        await send(
            {
                "type": "http.response.start",
                "status": rendered.status,
                "headers": [
                    *(
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in rendered.headers
                    ),
                    (b"content-length", str(len(rendered.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": rendered.body})
