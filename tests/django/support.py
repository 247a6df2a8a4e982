"""Helpers of the Django tests: the fixture world, as in the Starlette tests.

Users: ``admin`` (role admin, team blue), ``manager`` (role manager, team blue),
``employee`` (role employee, team red). Keys, by name: ``admin`` (personal,
global), ``team_blue`` (team service account), ``restricted`` (personal,
``appointments:read`` only), ``revoked``.

The user rows use real access tokens (:data:`MANAGER_TOKEN`, :data:`EMPLOYEE_TOKEN`),
verified by the real token path of the middleware.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from wsgiref.util import setup_testing_defaults

from tests.principals import (
    EMPLOYEE_TOKEN,
    MANAGER_TOKEN,
    build_authenticator,
    issue_keys,
)

__all__ = [
    "EMPLOYEE_TOKEN",
    "MANAGER_TOKEN",
    "build_authenticator",
    "call_wsgi",
    "issue_keys",
]


def call_wsgi(
    app: Any,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    remote_addr: str | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one request through a WSGI app: ``(status, headers, body)``, from ``remote_addr``.

    A dozen lines instead of WebTest, whose WebOb still imports the deprecated ``cgi``.
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
    }
    if remote_addr is not None:
        environ["REMOTE_ADDR"] = remote_addr
    setup_testing_defaults(environ)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[Any] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        started[:] = [int(status.split(maxsplit=1)[0]), response_headers]

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started[0], list(started[1]), content
