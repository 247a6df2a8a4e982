"""The rule table through HTTP, identical for every way the plugin protects a Django view.

One matrix of (credential, route) -> refusal runs against the same API built four
ways (sync function views, async function views, class-based views with
``method_decorator``, DRF permission classes), through the sync middleware path
(``Client``) and the async one (``AsyncClient``). Every refusal must be the
core's rendering byte for byte: status, headers and body.
"""

from __future__ import annotations

import pytest
from django.test import AsyncClient, Client
from django.test.client import ClientMixin

from authmw import (
    Authenticator,
    AuthError,
    Forbidden,
    InsufficientRole,
    InsufficientScope,
    InvalidToken,
    MissingCredentials,
)
from tests.django.views import VARIANTS

pytestmark = pytest.mark.anyio

SUBJECTS = {
    "admin": "admin",
    "team_blue": "team:blue",
    "restricted": "admin",
    "user_manager": "manager",
    "user_employee": "employee",
}

ME = ("GET", "me")
REPORTS = ("GET", "reports")
ADMIN = ("POST", "admin/settings")
APPOINTMENTS = ("GET", "appointments")
REPORT_DATA = ("GET", "reports/data")
BLUE = ("GET", "teams/blue/usage")
RED = ("GET", "teams/red/usage")
PASSWORD = ("POST", "account/password")
USER_REPORTS = ("GET", "user/reports")

OK = None
MISSING = MissingCredentials()
INVALID = InvalidToken()
ROLE = InsufficientRole()
KIND = Forbidden("This kind of credential may not call this endpoint.")
TEAM = Forbidden("This credential is not allowed to act for this team.")


def scope(name: str) -> AuthError:
    return InsufficientScope(frozenset({name}))


MATRIX: list[tuple[str, tuple[str, str], AuthError | None]] = [
    # A personal key of an admin is global.
    ("admin", ME, OK),
    ("admin", REPORTS, OK),
    ("admin", ADMIN, OK),
    ("admin", APPOINTMENTS, OK),
    ("admin", REPORT_DATA, OK),
    ("admin", BLUE, OK),
    ("admin", RED, OK),
    ("admin", PASSWORD, KIND),
    ("admin", USER_REPORTS, KIND),
    # A team key is global within its team.
    ("team_blue", ME, OK),
    ("team_blue", REPORTS, OK),
    ("team_blue", ADMIN, OK),
    ("team_blue", REPORT_DATA, OK),
    ("team_blue", BLUE, OK),
    ("team_blue", RED, TEAM),
    ("team_blue", PASSWORD, KIND),
    # A restricted key passes only its scopes, and no role check.
    ("restricted", ME, OK),
    ("restricted", REPORTS, ROLE),
    ("restricted", ADMIN, ROLE),
    ("restricted", APPOINTMENTS, OK),
    ("restricted", REPORT_DATA, scope("reports:read")),
    ("restricted", RED, OK),
    ("restricted", PASSWORD, KIND),
    # A user's token carries the user's roles (through the hierarchy) and teams.
    ("user_manager", ME, OK),
    ("user_manager", REPORTS, OK),
    ("user_manager", ADMIN, ROLE),
    ("user_manager", APPOINTMENTS, OK),
    ("user_manager", REPORT_DATA, OK),
    ("user_manager", BLUE, OK),
    ("user_manager", RED, TEAM),
    ("user_manager", PASSWORD, OK),
    ("user_manager", USER_REPORTS, OK),
    ("user_employee", REPORTS, ROLE),
    ("user_employee", APPOINTMENTS, OK),
    ("user_employee", REPORT_DATA, scope("reports:read")),
    ("user_employee", RED, OK),
    ("user_employee", BLUE, TEAM),
    ("user_employee", PASSWORD, OK),
    ("user_employee", USER_REPORTS, ROLE),
    # No credential, and a revoked one.
    ("none", ME, MISSING),
    ("none", REPORTS, MISSING),
    ("none", BLUE, MISSING),
    ("none", PASSWORD, MISSING),
    ("revoked", ME, INVALID),
    ("revoked", APPOINTMENTS, INVALID),
    ("revoked", PASSWORD, INVALID),
]

Case = tuple[str, tuple[str, str], AuthError | None]
CASES = [pytest.param(case, id=f"{case[0]}-{case[1][0]}-{case[1][1]}") for case in MATRIX]


def expected_headers(error: AuthError, realm: str) -> dict[str, str]:
    rendered = error.render(realm)
    headers = {name.lower(): value for name, value in rendered.headers}
    headers["content-length"] = str(len(rendered.body))
    return headers


def check(response: object, auth: Authenticator, who: str, expected: AuthError | None) -> None:
    status: int = response.status_code  # type: ignore[attr-defined]
    content: bytes = response.content  # type: ignore[attr-defined]
    if expected is None:
        assert status == 200, content
        assert response.json() == {"subject": SUBJECTS[who]}  # type: ignore[attr-defined]
        return
    realm = auth.settings.realm
    rendered = expected.render(realm)
    assert (status, content) == (rendered.status, rendered.body)
    headers = {name.lower(): value for name, value in response.items()}  # type: ignore[attr-defined]
    assert headers == expected_headers(expected, realm)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case", CASES)
def test_sync_path(
    auth: Authenticator,
    credentials: dict[str, dict[str, str]],
    variant: str,
    case: Case,
) -> None:
    who, (method, route), expected = case
    client: ClientMixin = Client()
    response = client.generic(method, f"/{variant}/{route}", headers=credentials[who])
    check(response, auth, who, expected)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case", CASES)
async def test_async_path(
    auth: Authenticator,
    credentials: dict[str, dict[str, str]],
    variant: str,
    case: Case,
) -> None:
    who, (method, route), expected = case
    client = AsyncClient()
    response = await client.generic(method, f"/{variant}/{route}", headers=credentials[who])
    check(response, auth, who, expected)
