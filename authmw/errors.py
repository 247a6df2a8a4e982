"""The error tree: every way a request can fail authentication or authorization.

Each error knows its HTTP status, its RFC 6750 error code, a fixed description
and how to render itself as ``(status, headers, body)``. Plugins only copy the
rendered triple into their framework's response type, so a 401 looks the same
byte for byte in Flask, Starlette and Django.

Descriptions are fixed text chosen by this library, never built from request
data: an error must not echo a credential back (RFC 6750 section 5.3, ASVS
V16 "do not log or return secrets").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "DEFAULT_REALM",
    "AuthError",
    "Forbidden",
    "InsufficientRole",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "MissingCredentials",
    "Rendered",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unverifiable",
]

#: The realm announced in ``WWW-Authenticate`` unless the application sets its own.
DEFAULT_REALM = "api"

# The two Authorization schemes we accept. X-API-Key is a header, not an
# authentication scheme, so it has no challenge of its own (RFC 9110 section 11.6.1).
_SCHEMES = ("Bearer", "apikey")


@dataclass(frozen=True, slots=True)
class Rendered:
    """An error as the framework should send it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _quote(value: str) -> str:
    # RFC 9110 section 5.6.4 quoted-string: backslash-escape '"' and '\'.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AuthError(Exception):
    """Base class: a request that authmw refuses.

    Subclasses fix ``status``, ``error`` and ``description``. Raising one from a
    decorator, dependency or the middleware produces the same response in every
    framework.
    """

    status: ClassVar[int] = 401
    #: The RFC 6750 / RFC 6749 error code, or ``None`` when the client sent no credential.
    error: ClassVar[str] = "invalid_request"
    #: Put ``error=...`` into the challenge (RFC 6750 section 3: not when no credential was sent).
    challenge_error: ClassVar[bool] = True
    #: Send a ``WWW-Authenticate`` challenge with this error at all.
    challenges: ClassVar[bool] = True
    description: str = "The request was refused."

    def __init__(self, description: str | None = None) -> None:
        if description is not None:
            self.description = description
        super().__init__(self.description)

    def www_authenticate(self, realm: str = DEFAULT_REALM) -> str:
        """Return the ``WWW-Authenticate`` value: one challenge per accepted scheme."""
        params = [f"realm={_quote(realm)}"]
        if self.challenge_error:
            params.append(f"error={_quote(self.error)}")
            params.append(f"error_description={_quote(self.description)}")
            params.extend(self._extra_params())
        joined = ", ".join(params)
        return ", ".join(f"{scheme} {joined}" for scheme in _SCHEMES)

    def _extra_params(self) -> list[str]:
        return []

    def body(self) -> dict[str, str]:
        """Return the JSON body as a dict: ``{"error", "error_description"}``."""
        return {"error": self.error, "error_description": self.description}

    def render(self, realm: str = DEFAULT_REALM) -> Rendered:
        """Render this error as status, headers and a JSON body."""
        headers: list[tuple[str, str]] = [
            ("Content-Type", "application/json"),
            # Error responses depend on the credential sent; never let a cache share them.
            ("Cache-Control", "no-store"),
        ]
        if self.challenges:
            headers.append(("WWW-Authenticate", self.www_authenticate(realm)))
        headers.extend(self._extra_headers())
        body = json.dumps(self.body(), separators=(",", ":")).encode()
        return Rendered(self.status, tuple(headers), body)

    def _extra_headers(self) -> list[tuple[str, str]]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidRequest(AuthError):
    """400: the credential is malformed, or more than one was sent (RFC 6750 section 3.1)."""

    status = 400
    error = "invalid_request"
    description = "The request carries a malformed credential."


class MissingCredentials(AuthError):
    """401 without an error code: the client sent no credential we accept (RFC 6750 section 3.1)."""

    status = 401
    error = "missing_credentials"
    challenge_error = False
    description = "This endpoint requires authentication."


class InvalidToken(AuthError):
    """401 ``invalid_token``: unknown, tampered, wrong, expired or revoked credential.

    Every one of those causes gets this same response, so a caller cannot tell a
    key that exists from one that does not.
    """

    status = 401
    error = "invalid_token"
    description = "The credential is invalid, expired or revoked."


class InsufficientScope(AuthError):
    """403 ``insufficient_scope``, naming the scopes the route requires (RFC 6750 section 3.1)."""

    status = 403
    error = "insufficient_scope"
    description = "The credential lacks a scope this endpoint requires."

    def __init__(self, scopes: frozenset[str] | set[str] | tuple[str, ...]) -> None:
        super().__init__()
        #: The scopes the route requires, space-separated as in RFC 6749 section 3.3.
        self.scope = " ".join(sorted(scopes))

    def _extra_params(self) -> list[str]:
        return [f"scope={_quote(self.scope)}"]

    def body(self) -> dict[str, str]:
        """Return the JSON body, including the required ``scope``."""
        return {**super().body(), "scope": self.scope}


class InsufficientRole(AuthError):
    """403 ``insufficient_role``: the principal has none of the roles the route requires."""

    status = 403
    error = "insufficient_role"
    challenges = False
    description = "The credential's role does not allow this request."


class Forbidden(AuthError):
    """403 ``forbidden``: the kind of credential or its team may not call this endpoint."""

    status = 403
    error = "forbidden"
    challenges = False
    description = "This credential may not call this endpoint."


class ServiceUnavailable(AuthError):
    """503: the credential store could not be reached, so nothing was let in (fail closed)."""

    status = 503
    error = "temporarily_unavailable"
    challenges = False
    description = "Credentials cannot be verified right now; try again shortly."

    def _extra_headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "1")]


class Unverifiable(InvalidToken):
    """401 instead of 503 when the store is down (``Settings(outage_status=401)``).

    For clients that treat a 503 as "retry" and would hammer a struggling store;
    either way the request is refused.
    """

    description = "The credential could not be verified right now."


class TooManyRequests(AuthError):
    """429: too many failed logins from this client or for this account; retry later.

    The body is an RFC 6749 section 5.2 error, so an OAuth2 client reading the
    token endpoint's answer understands it; ``Retry-After`` (RFC 6585 section 4)
    says when to try again. No challenge: a different credential would not help.
    """

    status = 429
    error = "invalid_request"
    challenges = False
    description = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        # Never less than a second: "Retry-After: 0" invites a client to retry in a
        # tight loop, and the answer is sent from an error path that must not fail.
        #: Seconds the client should wait before trying again.
        self.retry_after = max(1, int(retry_after))

    def _extra_headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", str(self.retry_after))]

    def __repr__(self) -> str:
        return f"TooManyRequests(retry_after={self.retry_after})"
