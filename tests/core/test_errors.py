"""authmw.errors: each error renders the same status, challenge and body everywhere."""

from __future__ import annotations

import json

import pytest

from authmw.errors import (
    DEFAULT_REALM,
    AuthError,
    Forbidden,
    InsufficientRole,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    ServiceUnavailable,
)

ALL_ERRORS: list[AuthError] = [
    InvalidRequest(),
    MissingCredentials(),
    InvalidToken(),
    InsufficientScope(frozenset({"appointments:read"})),
    InsufficientRole(),
    Forbidden(),
    ServiceUnavailable(),
]


@pytest.mark.parametrize(
    ("error", "status", "code", "description"),
    [
        (InvalidRequest(), 400, "invalid_request", "The request carries a malformed credential."),
        (
            MissingCredentials(),
            401,
            "missing_credentials",
            "This endpoint requires authentication.",
        ),
        (InvalidToken(), 401, "invalid_token", "The credential is invalid, expired or revoked."),
        (
            InsufficientScope(frozenset({"a"})),
            403,
            "insufficient_scope",
            "The credential lacks a scope this endpoint requires.",
        ),
        (
            InsufficientRole(),
            403,
            "insufficient_role",
            "The credential's role does not allow this request.",
        ),
        (Forbidden(), 403, "forbidden", "This credential may not call this endpoint."),
        (
            ServiceUnavailable(),
            503,
            "temporarily_unavailable",
            "Credentials cannot be verified right now; try again shortly.",
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, AuthError) else None,
)
def test_status_code_and_description(
    error: AuthError, status: int, code: str, description: str
) -> None:
    assert error.status == status
    assert error.error == code
    assert error.description == description
    assert str(error) == description
    assert error.render().status == status


def test_every_error_is_an_auth_error() -> None:
    for error in ALL_ERRORS:
        assert isinstance(error, AuthError)
        assert isinstance(error, Exception)


def test_custom_description_does_not_change_the_class_default() -> None:
    error = InvalidRequest("Send exactly one credential.")
    assert error.description == "Send exactly one credential."
    assert InvalidRequest().description == "The request carries a malformed credential."
    assert repr(error) == "InvalidRequest('Send exactly one credential.')"


# -- WWW-Authenticate -------------------------------------------------------------------


def challenge(error: AuthError, realm: str = DEFAULT_REALM) -> str | None:
    values = [v for k, v in error.render(realm).headers if k == "WWW-Authenticate"]
    assert len(values) <= 1
    return values[0] if values else None


def test_missing_credentials_challenges_each_scheme_without_an_error() -> None:
    # RFC 6750 section 3.1: no error code when the request carried no credential.
    assert challenge(MissingCredentials()) == 'Bearer realm="api", apikey realm="api"'


def test_invalid_token_challenge() -> None:
    params = (
        'realm="api", error="invalid_token", '
        'error_description="The credential is invalid, expired or revoked."'
    )
    assert challenge(InvalidToken()) == f"Bearer {params}, apikey {params}"


def test_invalid_request_challenge() -> None:
    params = (
        'realm="api", error="invalid_request", '
        'error_description="The request carries a malformed credential."'
    )
    assert challenge(InvalidRequest()) == f"Bearer {params}, apikey {params}"


def test_insufficient_scope_challenge_names_the_scopes_sorted() -> None:
    error = InsufficientScope(frozenset({"reports:read", "appointments:read"}))
    assert error.scope == "appointments:read reports:read"
    params = (
        'realm="api", error="insufficient_scope", '
        'error_description="The credential lacks a scope this endpoint requires.", '
        'scope="appointments:read reports:read"'
    )
    assert challenge(error) == f"Bearer {params}, apikey {params}"


def test_realm_is_configurable() -> None:
    assert challenge(MissingCredentials(), "billing") == (
        'Bearer realm="billing", apikey realm="billing"'
    )


def test_realm_quotes_and_backslashes_are_escaped() -> None:
    # RFC 9110 section 5.6.4: inside a quoted-string, '"' and '\' are backslash-escaped.
    value = MissingCredentials().www_authenticate('a"b\\c')
    assert value == 'Bearer realm="a\\"b\\\\c", apikey realm="a\\"b\\\\c"'


@pytest.mark.parametrize("error", [InsufficientRole(), Forbidden(), ServiceUnavailable()])
def test_refusals_other_than_insufficient_scope_carry_no_challenge(error: AuthError) -> None:
    # A challenge tells the client which credential to send; for these, another
    # credential of the same kind would not help (403) or the fault is ours (503).
    assert challenge(error) is None


@pytest.mark.parametrize(
    "error",
    [MissingCredentials(), InvalidToken(), InvalidRequest(), InsufficientScope(frozenset({"a"}))],
)
def test_challenge_lists_bearer_then_apikey_with_realm_first(error: AuthError) -> None:
    value = challenge(error)
    assert value is not None
    assert value.startswith('Bearer realm="api"')
    assert value.count('realm="api"') == 2
    assert ', apikey realm="api"' in value
    # X-API-Key is a header, not a scheme: it has no challenge.
    assert "x-api-key" not in value.lower()


# -- the rendered response ------------------------------------------------------------------


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_json_body_and_common_headers(error: AuthError) -> None:
    rendered = error.render()
    headers = dict(rendered.headers)
    assert len(headers) == len(rendered.headers), "no header is sent twice"
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    body = json.loads(rendered.body)
    expected = {"error": error.error, "error_description": error.description}
    if isinstance(error, InsufficientScope):
        expected["scope"] = error.scope
    assert body == expected
    assert error.body() == expected
    # Header values must be sendable as HTTP/1.1 field values.
    for name, value in rendered.headers:
        value.encode("latin-1")
        assert "\r" not in value
        assert "\n" not in value
        assert name.isascii()


def test_body_is_compact_json() -> None:
    assert InvalidToken().render().body == (
        b'{"error":"invalid_token",'
        b'"error_description":"The credential is invalid, expired or revoked."}'
    )


def test_retry_after_only_on_service_unavailable() -> None:
    assert dict(ServiceUnavailable().render().headers)["Retry-After"] == "1"
    for error in ALL_ERRORS:
        if not isinstance(error, ServiceUnavailable):
            assert "Retry-After" not in dict(error.render().headers)


def test_rendered_is_immutable() -> None:
    rendered = InvalidToken().render()
    with pytest.raises(AttributeError):
        rendered.status = 200  # type: ignore[misc]
