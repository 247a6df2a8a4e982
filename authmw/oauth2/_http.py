"""A neutral request and response, and the WSGI and ASGI adapters around them.

The auth endpoints are written once against :class:`HttpRequest` and
:class:`HttpResponse`; these adapters are all that knows about WSGI or ASGI.
Requests the endpoints do not serve go to the wrapped application untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authmw._paths import route_path

__all__ = [
    "MAX_BODY",
    "TOO_LARGE",
    "FormError",
    "HttpRequest",
    "HttpResponse",
    "content_of",
    "parse_form",
]

#: The largest request body the endpoints read. A token request is a few hundred bytes.
MAX_BODY = 16 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What an endpoint needs from a request. Header names are lower-case."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)
    peer: str | None = None
    #: ``http`` or ``https``, as the server received the request.
    scheme: str = "http"

    def header(self, name: str) -> str | None:
        """Return the header's value; several occurrences are joined with ``,``."""
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None

    def header_count(self, name: str) -> int:
        """How many times the header was sent."""
        return sum(1 for k, _ in self.headers if k == name)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status, headers and body of a response."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    @classmethod
    def json(
        cls, status: int, payload: object, headers: Iterable[tuple[str, str]] = ()
    ) -> HttpResponse:
        """Build a JSON response, never cached: it may carry tokens or say who asked."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(
            status,
            (
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Pragma", "no-cache"),
                *headers,
            ),
            body,
        )


class FormError(ValueError):
    """The body is not a form we accept; the message is fixed text, safe to send."""


def parse_form(request: HttpRequest) -> dict[str, str]:
    """Decode an ``application/x-www-form-urlencoded`` body strictly.

    RFC 6749 section 3.2: parameters sent without a value are treated as omitted,
    and a parameter may not appear twice. Anything that is not UTF-8 form data is
    refused rather than guessed at.
    """
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError("The request body must be application/x-www-form-urlencoded.")
    try:
        text = request.body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeError, ValueError):
        raise FormError("The request body is not valid form data.") from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise FormError(f"The {_safe_name(name)} parameter is repeated.")
        seen.add(name)
        if value:
            form[name] = value
    return form


def _safe_name(name: str) -> str:
    # Parameter names are echoed in errors; keep them short and printable.
    return name[:40] if name.isascii() and name.isprintable() else "a"


# -- adapters ----------------------------------------------------------------------

Handler = Callable[[HttpRequest], HttpResponse]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The answer to a body over :data:`MAX_BODY` (in every adapter, the Django view too).
TOO_LARGE = HttpResponse.json(
    413, {"error": "invalid_request", "error_description": "The request body is too large."}
)
_STATUS_TEXT = {
    200: "OK",
    302: "Found",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def content_of(method: str, response: HttpResponse) -> bytes:
    """Return the content to send with ``response`` to a request made with ``method``.

    None for HEAD (RFC 9110 section 9.3.2), whose Content-Length still gives the
    size a GET would have received.
    """
    return b"" if method.upper() == "HEAD" else response.body


def _not_found() -> HttpResponse:
    return HttpResponse.json(404, {"error": "not_found", "error_description": "No such endpoint."})


def wsgi_adapter(handles: Callable[[str], bool], handle: Handler, app: WSGIApp | None) -> WSGIApp:
    """Serve the paths ``handles`` accepts with ``handle``; pass the rest to ``app``."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if not handles(path):
            if app is not None:
                return app(environ, start_response)
            response = _not_found()
        else:
            response = _wsgi_call(environ, path, handle)
        status = f"{response.status} {_STATUS_TEXT.get(response.status, 'Status')}"
        start_response(status, [*response.headers, ("Content-Length", str(len(response.body)))])
        return [content_of(environ.get("REQUEST_METHOD", "GET"), response)]

    return wsgi


def _wsgi_call(environ: dict[str, Any], path: str, handle: Handler) -> HttpResponse:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY:
        return TOO_LARGE
    body = environ["wsgi.input"].read(length) if length else b""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers.append((key[5:].replace("_", "-").lower(), value))
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    request = HttpRequest(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=path,
        query=environ.get("QUERY_STRING", ""),
        headers=tuple(headers),
        body=body,
        peer=environ.get("REMOTE_ADDR"),
        scheme="https" if environ.get("wsgi.url_scheme") == "https" else "http",
    )
    return handle(request)


def asgi_adapter(
    handles: Callable[[str], bool],
    handle: Callable[[HttpRequest], Awaitable[HttpResponse]],
    app: ASGIApp | None,
) -> ASGIApp:
    """Do what :func:`wsgi_adapter` does, for ASGI; ``handle`` must not block the loop."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not handles(route_path(scope)):
            if app is not None:
                await app(scope, receive, send)
                return
            if scope["type"] != "http":
                return
            response = _not_found()
        else:
            body = await _read_body(receive)
            if body is None:
                response = TOO_LARGE
            else:
                response = await handle(
                    HttpRequest(
                        method=scope["method"].upper(),
                        path=route_path(scope),
                        query=scope.get("query_string", b"").decode("latin-1"),
                        headers=tuple(
                            (k.decode("latin-1").lower(), v.decode("latin-1"))
                            for k, v in scope["headers"]
                        ),
                        body=body,
                        peer=(scope.get("client") or (None,))[0],
                        scheme="https" if scope.get("scheme") == "https" else "http",
                    )
                )
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    *(
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers
                    ),
                    (b"content-length", str(len(response.body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": content_of(scope.get("method", ""), response)}
        )

    return asgi


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
