"""The scenario table: credential x header style x route -> expected status and ``error`` code.

One row is one request. The same rows run against the FastAPI, Flask and Django
demo apps, in-process and over real HTTP, and every framework must answer each
row as the table says and exactly as the other two do.

Credentials (see :func:`request_headers` for the headers each one sends):

* ``none`` -- no credential header at all;
* ``admin`` -- the demo's personal key of user admin (global);
* ``team`` -- the demo's team service account of team blue;
* ``restricted`` -- a personal key of admin restricted to ``appointments:read``;
* ``revoked`` -- a personal key of admin, revoked;
* ``tampered`` -- the admin key with one character of its secret changed;
* ``malformed`` -- ``Authorization: Bearer a b`` (not a b64token);
* ``two`` -- the admin key in ``Authorization`` and in ``X-API-Key`` at once;
* ``foreign`` -- ``Authorization: Basic ...``, a scheme authmw does not judge;
* ``user_employee`` -- an access token of user employee (role employee, team
  green) from the password grant of the first-party app "web";
* ``user_manager`` -- the same for user manager (role manager, team blue);
* ``client`` -- a client-credentials token of the machine client "reporting"
  (team blue; scopes ``reports:read`` and ``appointments:read``; no role);
* ``token_revoked`` -- a token of user employee, revoked (RFC 7009);
* ``token_tampered`` -- employee's token with one character of its signature changed.

The key credentials are sent in each header style of :data:`STYLES`; tokens only
as ``Authorization: Bearer`` (style ``"bearer"``); the others fix their own
headers (style ``None``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CREDENTIALS",
    "KEY_LABELS",
    "KINDS",
    "ROUTES",
    "SCENARIOS",
    "STYLES",
    "TOKEN_CLIENTS",
    "TOKEN_LABELS",
    "Scenario",
    "request_body",
    "request_headers",
    "secrets_sent",
    "tamper",
    "tamper_signature",
]

Style = Literal["bearer", "apikey", "x-api-key"]
#: The ways to send a key: ``Authorization: Bearer``, ``Authorization: apikey``, ``X-API-Key``.
STYLES: Final[tuple[Style, ...]] = ("bearer", "apikey", "x-api-key")

#: The keys a world must provide, by label (the demo's labels, plus ``revoked``).
KEY_LABELS: Final = ("admin", "team", "restricted", "revoked")
#: The access tokens a world must provide, by label.
TOKEN_LABELS: Final = ("user_employee", "user_manager", "client", "token_revoked")
#: Every credential of the table.
CREDENTIALS: Final = (
    *KEY_LABELS,
    *TOKEN_LABELS,
    "none",
    "tampered",
    "token_tampered",
    "malformed",
    "two",
    "foreign",
)
#: Credentials sent in a header style; the others carry fixed headers.
_STYLED: Final = frozenset({"admin", "team", "restricted", "revoked", "tampered"})
#: Credentials sent as ``Authorization: Bearer`` only: access tokens.
_TOKENS: Final = frozenset({*TOKEN_LABELS, "token_tampered"})
#: The principal kind ``/me`` reports for each credential that reaches it.
KINDS: Final[Mapping[str, str]] = {
    "admin": "api_key",
    "team": "api_key",
    "restricted": "api_key",
    "user_employee": "user",
    "user_manager": "user",
    "client": "client",
}
#: The demo client (by its label in ``CLIENTS``) each valid token was issued to.
TOKEN_CLIENTS: Final[Mapping[str, str]] = {
    "user_employee": "web",
    "user_manager": "web",
    "client": "reporting",
}

GET: Final = "GET"
POST: Final = "POST"
#: Every route of the contract's demo API, as (method, path).
ROUTES: Final = (
    (GET, "/health"),
    (GET, "/me"),
    (GET, "/catalog"),
    (GET, "/reports"),
    (POST, "/admin/settings"),
    (GET, "/appointments"),
    (GET, "/teams/blue/usage"),
    (GET, "/teams/green/usage"),
    (POST, "/account/password"),
)

# The JSON bodies of the POST routes: valid, so only authentication decides. The
# current password is nobody's: a user token reaches the route and gets a 400
# (the route's own refusal), and no password ever changes.
_BODIES: Final[Mapping[str, object]] = {
    "/admin/settings": {},
    "/account/password": {
        "current_password": "not-the-password-of-anyone",
        "new_password": "a long enough new password for the policy",
    },
}

# A fixed user:password, base64 ("conformance:suite"); never a real account.
_BASIC: Final = "Basic Y29uZm9ybWFuY2U6c3VpdGU="

# error codes of the contract
MISSING: Final = "missing_credentials"
INVALID_TOKEN: Final = "invalid_token"
INVALID_REQUEST: Final = "invalid_request"
FORBIDDEN: Final = "forbidden"
INSUFFICIENT_ROLE: Final = "insufficient_role"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One request and the answer the contract gives it."""

    credential: str
    style: Style | None
    method: str
    path: str
    status: int
    error: str | None

    @property
    def id(self) -> str:
        """A readable id, unique in the table: ``credential-style-METHOD-path``."""
        return f"{self.credential}-{self.style or 'raw'}-{self.method}-{self.path}"


def _raw(credential: str, method: str, path: str, status: int, error: str | None) -> Scenario:
    return Scenario(credential, None, method, path, status, error)


def _styled(
    credential: str, method: str, path: str, status: int, error: str | None
) -> tuple[Scenario, ...]:
    return tuple(Scenario(credential, s, method, path, status, error) for s in STYLES)


def _bearer(credential: str, method: str, path: str, status: int, error: str | None) -> Scenario:
    return Scenario(credential, "bearer", method, path, status, error)


SCENARIOS: Final[tuple[Scenario, ...]] = (
    # -- no credential: the public route answers, every other one asks for a credential
    _raw("none", GET, "/health", 200, None),
    _raw("none", GET, "/me", 401, MISSING),
    _raw("none", GET, "/catalog", 401, MISSING),
    _raw("none", GET, "/reports", 401, MISSING),
    _raw("none", POST, "/admin/settings", 401, MISSING),
    _raw("none", GET, "/appointments", 401, MISSING),
    _raw("none", GET, "/teams/blue/usage", 401, MISSING),
    _raw("none", GET, "/teams/green/usage", 401, MISSING),
    _raw("none", POST, "/account/password", 401, MISSING),
    # -- the admin's personal key: global, but never a user (no password to change)
    *_styled("admin", GET, "/health", 200, None),
    *_styled("admin", GET, "/me", 200, None),
    *_styled("admin", GET, "/catalog", 200, None),
    *_styled("admin", GET, "/reports", 200, None),
    *_styled("admin", POST, "/admin/settings", 200, None),
    *_styled("admin", GET, "/appointments", 200, None),
    *_styled("admin", GET, "/teams/blue/usage", 200, None),
    *_styled("admin", GET, "/teams/green/usage", 200, None),
    *_styled("admin", POST, "/account/password", 403, FORBIDDEN),
    # -- the team blue service account: global, but team-bound to blue
    *_styled("team", GET, "/health", 200, None),
    *_styled("team", GET, "/me", 200, None),
    *_styled("team", GET, "/catalog", 200, None),
    *_styled("team", GET, "/reports", 200, None),
    *_styled("team", POST, "/admin/settings", 200, None),
    *_styled("team", GET, "/appointments", 200, None),
    *_styled("team", GET, "/teams/blue/usage", 200, None),
    *_styled("team", GET, "/teams/green/usage", 403, FORBIDDEN),
    *_styled("team", POST, "/account/password", 403, FORBIDDEN),
    # -- restricted to appointments:read: no role at all, only its scope
    *_styled("restricted", GET, "/health", 200, None),
    *_styled("restricted", GET, "/me", 200, None),
    *_styled("restricted", GET, "/catalog", 200, None),
    *_styled("restricted", GET, "/reports", 403, INSUFFICIENT_ROLE),
    *_styled("restricted", POST, "/admin/settings", 403, INSUFFICIENT_ROLE),
    *_styled("restricted", GET, "/appointments", 200, None),
    *_styled("restricted", GET, "/teams/blue/usage", 200, None),  # a personal key: no team bound
    *_styled("restricted", GET, "/teams/green/usage", 200, None),
    *_styled("restricted", POST, "/account/password", 403, FORBIDDEN),
    # -- revoked: invalid wherever a credential is checked; the public route ignores it
    *_styled("revoked", GET, "/me", 401, INVALID_TOKEN),
    Scenario("revoked", "bearer", GET, "/health", 200, None),
    Scenario("revoked", "apikey", POST, "/admin/settings", 401, INVALID_TOKEN),
    Scenario("revoked", "x-api-key", POST, "/account/password", 401, INVALID_TOKEN),
    # -- tampered: one character of the admin key's secret changed
    *_styled("tampered", GET, "/me", 401, INVALID_TOKEN),
    Scenario("tampered", "apikey", GET, "/health", 200, None),
    Scenario("tampered", "x-api-key", GET, "/teams/blue/usage", 401, INVALID_TOKEN),
    Scenario("tampered", "bearer", POST, "/account/password", 401, INVALID_TOKEN),
    # -- malformed: a 400 wherever a credential is checked
    _raw("malformed", GET, "/health", 200, None),
    _raw("malformed", GET, "/me", 400, INVALID_REQUEST),
    _raw("malformed", GET, "/appointments", 400, INVALID_REQUEST),
    _raw("malformed", POST, "/account/password", 400, INVALID_REQUEST),
    # -- two credentials at once: refused, even though both are the same valid key
    _raw("two", GET, "/health", 200, None),
    _raw("two", GET, "/me", 400, INVALID_REQUEST),
    _raw("two", POST, "/admin/settings", 400, INVALID_REQUEST),
    _raw("two", POST, "/account/password", 400, INVALID_REQUEST),
    # -- a foreign scheme counts as no credential at all
    _raw("foreign", GET, "/health", 200, None),
    _raw("foreign", GET, "/me", 401, MISSING),
    _raw("foreign", GET, "/reports", 401, MISSING),
    _raw("foreign", POST, "/account/password", 401, MISSING),
    # -- employee's token: role-restricted (employee), scope appointments:read, team green;
    #    a user may call the password route, which refuses the wrong current password
    _bearer("user_employee", GET, "/health", 200, None),
    _bearer("user_employee", GET, "/me", 200, None),
    _bearer("user_employee", GET, "/catalog", 200, None),
    _bearer("user_employee", GET, "/reports", 403, INSUFFICIENT_ROLE),
    _bearer("user_employee", POST, "/admin/settings", 403, INSUFFICIENT_ROLE),
    _bearer("user_employee", GET, "/appointments", 200, None),
    _bearer("user_employee", GET, "/teams/blue/usage", 403, FORBIDDEN),
    _bearer("user_employee", GET, "/teams/green/usage", 200, None),
    _bearer("user_employee", POST, "/account/password", 400, INVALID_REQUEST),
    # -- manager's token: manager includes employee, but not admin; team blue
    _bearer("user_manager", GET, "/health", 200, None),
    _bearer("user_manager", GET, "/me", 200, None),
    _bearer("user_manager", GET, "/catalog", 200, None),
    _bearer("user_manager", GET, "/reports", 200, None),
    _bearer("user_manager", POST, "/admin/settings", 403, INSUFFICIENT_ROLE),
    _bearer("user_manager", GET, "/appointments", 200, None),
    _bearer("user_manager", GET, "/teams/blue/usage", 200, None),
    _bearer("user_manager", GET, "/teams/green/usage", 403, FORBIDDEN),
    _bearer("user_manager", POST, "/account/password", 400, INVALID_REQUEST),
    # -- the reporting client: no role, its granted scopes, bound to team blue, never a user
    _bearer("client", GET, "/health", 200, None),
    _bearer("client", GET, "/me", 200, None),
    _bearer("client", GET, "/catalog", 200, None),
    _bearer("client", GET, "/reports", 403, INSUFFICIENT_ROLE),
    _bearer("client", POST, "/admin/settings", 403, INSUFFICIENT_ROLE),
    _bearer("client", GET, "/appointments", 200, None),
    _bearer("client", GET, "/teams/blue/usage", 200, None),
    _bearer("client", GET, "/teams/green/usage", 403, FORBIDDEN),
    _bearer("client", POST, "/account/password", 403, FORBIDDEN),
    # -- a revoked token: invalid wherever a credential is checked, even where it once passed
    _bearer("token_revoked", GET, "/health", 200, None),
    _bearer("token_revoked", GET, "/me", 401, INVALID_TOKEN),
    _bearer("token_revoked", GET, "/appointments", 401, INVALID_TOKEN),
    _bearer("token_revoked", GET, "/teams/green/usage", 401, INVALID_TOKEN),
    _bearer("token_revoked", POST, "/account/password", 401, INVALID_TOKEN),
    # -- a tampered token: its signature no longer matches
    _bearer("token_tampered", GET, "/health", 200, None),
    _bearer("token_tampered", GET, "/me", 401, INVALID_TOKEN),
    _bearer("token_tampered", GET, "/appointments", 401, INVALID_TOKEN),
    _bearer("token_tampered", GET, "/teams/green/usage", 401, INVALID_TOKEN),
    _bearer("token_tampered", POST, "/account/password", 401, INVALID_TOKEN),
)


def _change_at(value: str, at: int) -> str:
    replacement = "A" if value[at] != "A" else "B"
    return value[:at] + replacement + value[at + 1 :]


def tamper(key: str) -> str:
    """Return ``key`` with the first character of its secret changed (still a well-formed token).

    A key reads ``prefix_keyid_secretchecksum``: the key id still names a real
    key, so the change is caught by verification, not by the parser.
    """
    return _change_at(key, key.rindex("_") + 1)


def tamper_signature(token: str) -> str:
    """Return access ``token`` with the first character of its signature changed.

    A token reads ``prefix_payload.signature`` (base64url). The first character
    is changed, not the last: the last one also carries padding bits, which a
    decoder may ignore. The payload is untouched and still names a live token.
    """
    return _change_at(token, token.rindex(".") + 1)


def _key_header(style: Style, key: str) -> dict[str, str]:
    if style == "bearer":
        return {"Authorization": f"Bearer {key}"}
    if style == "apikey":
        return {"Authorization": f"apikey {key}"}
    return {"X-API-Key": key}


def _value(credential: str, secrets: Mapping[str, str]) -> str:
    if credential == "tampered":
        return tamper(secrets["admin"])
    if credential == "token_tampered":
        return tamper_signature(secrets["user_employee"])
    return secrets[credential]


def request_headers(scenario: Scenario, secrets: Mapping[str, str]) -> dict[str, str]:
    """The headers the scenario's request sends.

    ``secrets`` maps :data:`KEY_LABELS` and :data:`TOKEN_LABELS` to the values of
    the keys and tokens.
    """
    credential = scenario.credential
    headers: dict[str, str] = (
        {"Content-Type": "application/json"} if scenario.method == POST else {}
    )
    if credential in _STYLED:
        assert scenario.style is not None, scenario
        return headers | _key_header(scenario.style, _value(credential, secrets))
    if credential in _TOKENS:
        assert scenario.style == "bearer", scenario
        return headers | {"Authorization": f"Bearer {_value(credential, secrets)}"}
    assert scenario.style is None, scenario
    if credential == "none":
        return headers
    if credential == "malformed":
        return headers | {"Authorization": "Bearer a b"}
    if credential == "two":
        admin = secrets["admin"]
        return headers | {"Authorization": f"Bearer {admin}", "X-API-Key": admin}
    if credential == "foreign":
        return headers | {"Authorization": _BASIC}
    raise AssertionError(f"unknown credential {credential!r}")


def request_body(scenario: Scenario) -> bytes:
    """The request body: the route's valid JSON for a POST, nothing for a GET."""
    if scenario.method != POST:
        return b""
    return json.dumps(_BODIES[scenario.path]).encode()


def secrets_sent(scenario: Scenario, secrets: Mapping[str, str]) -> list[str]:
    """The secret values the request carries: none of them may come back in the answer.

    A token is a secret like a key: neither its whole value nor its signature may
    be echoed.
    """
    credential = scenario.credential
    if credential in ("none", "malformed"):
        return []
    if credential == "foreign":
        return [_BASIC.split()[1]]
    if credential == "two":
        return [secrets["admin"]]
    value = _value(credential, secrets)
    if credential in _TOKENS:
        return [value, value[value.rindex(".") + 1 :]]
    return [value]
