"""Fail closed against a real PostgreSQL that goes away, and recover when it returns.

The database is reached through a TCP proxy the test cuts and restores, so the
outage is real (refused connections, dropped sockets) without stopping a server
other tests use. The deadlines are liveness bounds, not timing claims.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from authmw import Authenticator, Settings
from authmw.credentials import Credential
from authmw.errors import ServiceUnavailable, Unverifiable
from authmw.oauth2 import AuthEndpoints, HttpRequest
from authmw.store.sql import SQLStore
from authmw.wsgi import AuthMiddleware
from tests.conftest import PASSWORD, SECRET_KEY, AuthenticatorFactory
from tests.core.conftest import POSTGRES_SKIP, POSTGRES_URL
from tests.core.proxy import TcpProxy

DEADLINE = 30.0


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.1)


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A private schema on the real server: ``(host, port)`` and the schema's name."""
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    schema = f"authmw_outage_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    yield POSTGRES_URL, schema
    with engine.begin() as conn:
        conn.execute(sa.schema.DropSchema(schema, cascade=True))
    engine.dispose()


@pytest.fixture
def proxy(database: tuple[str, str]) -> Iterator[TcpProxy]:
    url = sa.make_url(database[0])
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def auth(
    make_authenticator: AuthenticatorFactory, database: tuple[str, str], proxy: TcpProxy
) -> Callable[..., Authenticator]:
    """Authenticators whose store goes through the proxy."""
    url, schema = database
    proxied = sa.make_url(url).set(host="127.0.0.1", port=proxy.port)

    def make(**settings: Any) -> Authenticator:
        store = SQLStore(
            proxied.render_as_string(hide_password=False),
            connect_args={"options": f"-csearch_path={schema}"},
        )
        return make_authenticator(
            store, settings=Settings(secret_keys=(SECRET_KEY,), cache_ttl=0, **settings)
        )

    return make


def call(auth: Authenticator, headers: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
    """One request through the real WSGI middleware to a view that says who it is."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        principal = environ.get("authmw.principal")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"subject": principal.subject if principal else None}).encode()]

    status: list[str] = []
    out_headers: dict[str, str] = {}

    def record(line: str, pairs: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        out_headers.update(pairs)
        return None

    start_response: Any = record

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/me", "wsgi.input": None}
    environ |= {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    body = b"".join(AuthMiddleware(app, auth, require_auth=True)(environ, start_response))
    return status[0], out_headers, body


def test_an_api_key_is_refused_with_503_while_the_store_is_down_and_works_after(
    auth: Callable[..., Authenticator], proxy: TcpProxy
) -> None:
    api = auth()
    key = api.keys.create(name="k", owner="admin").key
    assert call(api, {"X-API-Key": key})[0].startswith("200")
    proxy.cut()
    status, headers, body = call(api, {"X-API-Key": key})
    assert status.startswith("503")
    assert headers["Retry-After"]
    assert json.loads(body)["error"] == "temporarily_unavailable"
    proxy.restore()
    eventually(lambda: call(api, {"X-API-Key": key})[0].startswith("200"), "recovery")


def test_the_outage_answer_can_be_401(auth: Callable[..., Authenticator], proxy: TcpProxy) -> None:
    api = auth(outage_status=401)
    key = api.keys.create(name="k", owner="admin").key
    proxy.cut()
    with pytest.raises(Unverifiable):
        api.authenticate(Credential("x-api-key", key))
    status, _, body = call(api, {"X-API-Key": key})
    assert status.startswith("401")
    assert json.loads(body)["error"] == "invalid_token"


def test_an_access_token_that_must_be_checked_is_refused_while_the_store_is_down(
    auth: Callable[..., Authenticator], proxy: TcpProxy
) -> None:
    api = auth()
    app = api.clients.create_app("web", redirect_uris=["https://a.example/cb"], first_party=True)
    user = api.users.get("manager")
    token = api.tokens.issue_for_user(user, app.client, frozenset()).access_token
    assert api.authenticate(Credential("bearer", token)) is not None
    proxy.cut()
    with pytest.raises(ServiceUnavailable):
        api.authenticate(Credential("bearer", token))  # cache_ttl=0: it must be checked
    proxy.restore()
    eventually(
        lambda: _works(lambda: api.authenticate(Credential("bearer", token))), "token recovery"
    )


def test_the_token_endpoint_answers_503_and_issues_nothing_while_the_store_is_down(
    auth: Callable[..., Authenticator], proxy: TcpProxy
) -> None:
    api = auth()
    app = api.clients.create_app("web", redirect_uris=["https://a.example/cb"], first_party=True)
    endpoints = AuthEndpoints(api)
    basic = base64.b64encode(f"{app.client.id}:{app.secret}".encode()).decode()
    form = f"grant_type=password&username=manager&password={PASSWORD.replace(' ', '+')}"

    def login() -> tuple[int, dict[str, str], Any]:
        answer = endpoints.handle(
            HttpRequest(
                method="POST",
                path="/oauth/token",
                query="",
                headers=(
                    ("authorization", f"Basic {basic}"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ),
                body=form.encode(),
                peer="127.0.0.1",
            )
        )
        return answer.status, dict(answer.headers), json.loads(answer.body)

    assert login()[0] == 200
    proxy.cut()
    status, headers, body = login()
    assert status == 503
    assert headers["Retry-After"]
    assert "access_token" not in body
    proxy.restore()
    eventually(lambda: login()[0] == 200, "the token endpoint recovers")


def _works(call: Callable[[], object]) -> bool:
    try:
        return call() is not None
    except ServiceUnavailable:
        return False


def test_a_lookup_after_the_database_came_back_succeeds_at_the_first_try(
    auth: Callable[..., Authenticator], proxy: TcpProxy
) -> None:
    # The lookup pool keeps connections without a liveness ping (one round trip
    # per lookup instead of four); a connection the outage killed is retried once.
    api = auth()
    key = api.keys.create(name="k", owner="admin").key
    assert api.authenticate(Credential("x-api-key", key)) is not None  # pooled now
    proxy.cut()
    proxy.restore()
    assert api.authenticate(Credential("x-api-key", key)) is not None
