"""What the conformance tests share: one reply type, three ways to get one, and the checks.

* :func:`call_asgi` -- FastAPI in-process, through ``httpx.ASGITransport``;
* :func:`call_wsgi` -- Flask and Django in-process (the Django tests' small driver,
  WebTest-free);
* :class:`HttpClient` -- a real server over HTTP.

Each returns a :class:`Reply`. A :class:`World` holds the callers and the
credentials valid for them. :func:`check_row` holds one framework's reply to
the table; :func:`disagreements` lists what differs between the frameworks' replies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import httpx

from tests.conformance.scenarios import (
    KINDS,
    TOKEN_CLIENTS,
    Scenario,
    request_body,
    request_headers,
    secrets_sent,
)
from tests.django.support import call_wsgi as _call_wsgi

if TYPE_CHECKING:
    from tests.e2e.support import DemoServer

__all__ = [
    "FRAMEWORKS",
    "Caller",
    "HttpClient",
    "Reply",
    "World",
    "call_asgi",
    "call_wsgi",
    "check_row",
    "disagreements",
    "send",
]

#: The three demo apps, in the order reports list them.
FRAMEWORKS: Final = ("fastapi", "flask", "django")


@dataclass(frozen=True, slots=True)
class Reply:
    """One response: status, headers (names lower-cased, in order) and the body's bytes."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> list[str]:
        """Every value of header ``name`` (an empty list when absent)."""
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def www_authenticate(self) -> list[str]:
        """The ``WWW-Authenticate`` values: ``[]`` when there is no challenge."""
        return self.header("www-authenticate")

    def json(self) -> Any:
        """The body as JSON (fails the test with the raw body if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"not a JSON body: {self.body[:300]!r}") from None

    @property
    def error(self) -> str | None:
        """The body's ``error`` code, or ``None`` when it has none."""
        data = self.json()
        return data.get("error") if isinstance(data, dict) else None


#: ``caller(method, path, headers, body) -> Reply``: one framework's app or server.
Caller = Callable[[str, str, Mapping[str, str], bytes], Reply]


@dataclass
class World:
    """Callers, and the credentials valid for all of them.

    ``secrets``: the value of each key and token of the table, by label;
    ``ids``: the id ``/me`` reports for each (a key's id, a token's ``jti``);
    ``clients``: the OAuth2 client ids, by demo label (``web``, ``reporting``).
    """

    callers: dict[str, Caller]
    secrets: dict[str, str]
    ids: dict[str, str]
    clients: dict[str, str]
    servers: dict[str, DemoServer] = field(default_factory=dict)


def call_asgi(app: Any) -> Caller:
    """A caller for an ASGI app, in-process: one event loop per request (``asyncio.run``)."""

    async def exchange(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(method, path, headers=dict(headers), content=body)
        return _reply(response)

    def call(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        return asyncio.run(exchange(method, path, headers, body))

    return call


def call_wsgi(app: Any, around: Callable[[], Any] | None = None) -> Caller:
    """A caller for a WSGI app, in-process; ``around()`` is a context entered for each request."""
    app = _content_type_as_sent(app)

    def call(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if around is None:
            status, out, content = _call_wsgi(app, method, path, headers, body)
        else:
            with around():
                status, out, content = _call_wsgi(app, method, path, headers, body)
        return Reply(status, tuple((k.lower(), v) for k, v in out), content)

    return call


def _content_type_as_sent(app: Any) -> Any:
    """Wrap a WSGI app so it sees the request's ``Content-Type`` as a server passes it.

    The Django tests' driver always declares JSON (``CONTENT_TYPE``) and files a
    ``Content-Type`` header under ``HTTP_CONTENT_TYPE``, where no server puts it.
    The demos read the body only when it is declared JSON, as FastAPI does, so the
    header the request sends (or its absence) must be what they see.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        sent = environ.pop("HTTP_CONTENT_TYPE", None)
        if sent is None:
            environ.pop("CONTENT_TYPE", None)
        else:
            environ["CONTENT_TYPE"] = sent
        return app(environ, start_response)

    return wsgi


class HttpClient:
    """A caller for a server over real HTTP (one connection pool; close it after)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Send one request."""
        return _reply(self.http.request(method, path, headers=dict(headers), content=body))

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def _reply(response: httpx.Response) -> Reply:
    headers = tuple(
        (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers.raw
    )
    return Reply(response.status_code, headers, response.content)


def send(caller: Caller, scenario: Scenario, secrets: Mapping[str, str]) -> Reply:
    """Send the scenario's request, with the keys and tokens of the world ``caller`` talks to."""
    return caller(
        scenario.method, scenario.path, request_headers(scenario, secrets), request_body(scenario)
    )


def check_row(reply: Reply, scenario: Scenario, world: World) -> None:
    """Assert that ``reply`` is the table's answer to ``scenario``."""
    got = (reply.status, reply.error)
    assert got == (scenario.status, scenario.error), (
        f"expected {scenario.status} {scenario.error}, got {reply.status} {reply.error}: "
        f"{reply.body[:300]!r}"
    )
    challenges = reply.www_authenticate
    if scenario.status == 401:
        # The contract: a challenge per accepted scheme; an error code only when a credential came.
        assert len(challenges) == 1, challenges
        assert challenges[0].startswith('Bearer realm="api"'), challenges
        assert ('error="' in challenges[0]) == (scenario.error != "missing_credentials")
    for secret in secrets_sent(scenario, world.secrets):
        assert secret.encode() not in reply.body, "the answer echoes a secret"
        assert all(secret not in v for _, v in reply.headers), "a header echoes a secret"
    if scenario.path == "/me" and scenario.status == 200:
        _check_me(reply.json(), scenario.credential, world)


def _check_me(me: Any, credential: str, world: World) -> None:
    """``/me`` names the credential that was sent: its kind, its id, and a token's client."""
    assert me["kind"] == KINDS[credential], me
    assert me["credential_id"] == world.ids[credential], me
    if credential in TOKEN_CLIENTS:
        client_id = world.clients[TOKEN_CLIENTS[credential]]
        assert me["client_id"] == client_id, me
        # A user token acts for its user; a client token for the client itself.
        subject = client_id if me["kind"] == "client" else credential.removeprefix("user_")
        assert me["subject"] == subject, me


def disagreements(
    replies: Mapping[str, Reply], normalize: Callable[[Any], Any] = lambda data: data
) -> list[str]:
    """What differs between the frameworks' replies to one request (``[]``: they agree).

    Same status, same ``WWW-Authenticate`` (or none), same ``Content-Type`` and
    ``Cache-Control``, and the same body: equal
    after parsing for a success (``normalize`` applied), byte for byte for a refusal.
    """
    found: list[str] = []

    def compare(what: str, view: Callable[[Reply], Any]) -> None:
        values = {name: view(reply) for name, reply in replies.items()}
        if len({json.dumps(v, sort_keys=True, default=repr) for v in values.values()}) > 1:
            found.append(f"{what} differs: " + "; ".join(f"{n}={v!r}" for n, v in values.items()))

    compare("status", lambda r: r.status)
    compare("WWW-Authenticate", lambda r: r.www_authenticate)
    # Not in the brief's list, but equal today and part of "identical errors": refusals
    # must never be cached, and every answer is JSON.
    compare("Content-Type", lambda r: r.header("content-type"))
    compare("Cache-Control", lambda r: r.header("cache-control"))
    if all(r.status < 400 for r in replies.values()):
        compare("JSON body", lambda r: normalize(r.json()))
    else:
        compare("body bytes", lambda r: r.body.decode("latin-1"))
    return found
