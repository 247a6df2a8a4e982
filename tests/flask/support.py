"""The fixture world of the Flask tests: users, keys and two stand-in user tokens.

A copy of the parts of :mod:`tests.starlette.support` these tests need (that
module imports httpx and Starlette, which the Flask environment does not
install). Users: ``admin`` (role admin, team blue), ``manager`` (role manager,
team blue), ``employee`` (role employee, team red). Keys, by name:

* ``admin`` -- personal key of ``admin``: global;
* ``team_blue`` -- team service account of team ``blue``;
* ``restricted`` -- personal key of ``admin`` restricted to ``appointments:read``;
* ``revoked`` -- a personal key of ``admin``, revoked.

The user rows use real access tokens (:data:`MANAGER_TOKEN`, :data:`EMPLOYEE_TOKEN`),
verified by the real token path of the middleware.
"""

from __future__ import annotations

from typing import Any

from authmw import AuthError
from tests.principals import (
    EMPLOYEE_TOKEN,
    MANAGER_TOKEN,
    build_authenticator,
    issue_keys,
)

__all__ = [
    "EMPLOYEE_TOKEN",
    "MANAGER_TOKEN",
    "assert_rendered",
    "build_authenticator",
    "issue_keys",
]


def assert_rendered(response: Any, error: AuthError, realm: str = "api") -> None:
    """Assert that a Flask test response is the core's rendering of ``error``, byte for byte.

    Status, body and the header list in order; the only header added is the
    ``Content-Length`` the WSGI middleware adds to its own refusals too.
    """
    rendered = error.render(realm)
    assert response.status_code == rendered.status
    assert response.get_data() == rendered.body
    length = ("Content-Length", str(len(rendered.body)))
    assert list(response.headers) == [*rendered.headers, length]
