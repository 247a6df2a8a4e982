"""What the OAuth2 endpoint tests share: a world of clients, and HTTP drivers for WSGI and ASGI.

A test talks to the endpoints only over HTTP, through a :class:`Driver`:
:class:`WSGIDriver` runs the WSGI app under WebTest (with its WSGI lint), and
:class:`ASGIDriver` runs the ASGI app under ``httpx.ASGITransport``. Both return
the same :class:`Reply`, so one assertion checks both servers.

The authorization endpoint is driven like a browser would: :class:`Browser`
(WebTest) keeps cookies and fills in and submits the pages' forms.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

with warnings.catch_warnings():
    # WebOb, under WebTest, still imports the stdlib ``cgi`` module, which warns
    # on Python 3.11 and 3.12; the warning is WebOb's, not ours.
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    from webtest import TestApp, TestResponse

from authmw import Authenticator, Settings
from authmw.audit import AuditEvent
from authmw.clients import IssuedClient
from authmw.credentials import Credential
from authmw.oauth2 import AuthEndpoints
from authmw.principal import Principal
from authmw.throttle import LoginThrottle
from tests.conftest import PASSWORD, SECRET_KEY, AuthenticatorFactory

__all__ = [
    "AUTHORIZE",
    "BUCKET_START",
    "DRIVERS",
    "FORM",
    "LOOPBACK_HOST",
    "PEER",
    "REDIRECT",
    "ASGIDriver",
    "Browser",
    "Driver",
    "EpochClock",
    "FormFinder",
    "Pkce",
    "Reply",
    "TestResponse",
    "WSGIDriver",
    "World",
    "authorize_query",
    "basic",
    "build_world",
    "form",
    "make_driver",
    "no_store",
    "redirect_params",
]

FORM = "application/x-www-form-urlencoded"
#: The address requests come from unless a test says otherwise.
PEER = "198.51.100.7"
#: A throttle clock reading at the very start of a 300-second bucket.
BUCKET_START = 300.0 * 6_000_000


def form(*pairs: tuple[str, str], **params: str) -> bytes:
    """Encode form parameters; ``pairs`` may repeat a name, ``params`` may not."""
    return urlencode([*pairs, *params.items()]).encode()


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic ``Authorization`` value; id and secret are used exactly as given."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response: status, headers (names lower-cased) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The header's value (several joined with ``,``), ``None`` if absent."""
        values = [v for k, v in self.headers if k == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    @property
    def error(self) -> Any:
        """The RFC 6749 ``error`` code of the body."""
        return self.json()["error"]


class Driver(Protocol):
    """Sends one request to the endpoints over a real server interface."""

    name: str

    async def send(
        self,
        path: str,
        body: bytes = b"",
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        query: str = "",
        peer: str = PEER,
        content_type: str | None = FORM,
    ) -> Reply:
        """Send a request and return the response."""
        ...


class WSGIDriver:
    """The endpoints' WSGI app under WebTest (which also lints the WSGI protocol)."""

    name = "wsgi"

    def __init__(self, endpoints: AuthEndpoints) -> None:
        self.app = TestApp(endpoints.wsgi())

    def send_sync(
        self,
        path: str,
        body: bytes = b"",
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        query: str = "",
        peer: str = PEER,
        content_type: str | None = FORM,
    ) -> Reply:
        """Send a request, blocking."""
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        response = self.app.request(
            path + ("?" + query if query else ""),
            method=method,
            body=body,
            headers=sent,
            environ={"REMOTE_ADDR": peer},
            expect_errors=True,
        )
        return Reply(
            response.status_int,
            tuple((k.lower(), v) for k, v in response.headerlist),
            response.body,
        )

    async def send(
        self,
        path: str,
        body: bytes = b"",
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        query: str = "",
        peer: str = PEER,
        content_type: str | None = FORM,
    ) -> Reply:
        """Send a request (WSGI is synchronous: this just runs it)."""
        return self.send_sync(
            path,
            body,
            method=method,
            headers=headers,
            query=query,
            peer=peer,
            content_type=content_type,
        )


class ASGIDriver:
    """The endpoints' ASGI app under ``httpx.ASGITransport``."""

    name = "asgi"

    def __init__(self, endpoints: AuthEndpoints) -> None:
        self.app = endpoints.asgi()

    async def send(
        self,
        path: str,
        body: bytes = b"",
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        query: str = "",
        peer: str = PEER,
        content_type: str | None = FORM,
    ) -> Reply:
        """Send a request from ``peer``."""
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        transport = httpx.ASGITransport(app=self.app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(
                method, path + ("?" + query if query else ""), content=body, headers=sent
            )
        return Reply(
            response.status_code,
            tuple((k.decode().lower(), v.decode()) for k, v in response.headers.raw),
            response.content,
        )


class EpochClock:
    """Epoch seconds that move only when told to: the login throttle's clock."""

    def __init__(self, start: float = BUCKET_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@dataclass
class World:
    """An authenticator with the seeded users, one client of each kind, and the endpoints."""

    auth: Authenticator
    endpoints: AuthEndpoints
    clock: EpochClock
    #: A confidential first-party app: may use the password grant.
    web: IssuedClient
    #: A confidential third-party app: may not.
    third: IssuedClient
    #: A public first-party app: no secret.
    public: IssuedClient
    #: A machine client of team "ops" with scope reports:read and role employee.
    machine: IssuedClient
    events: list[AuditEvent] = field(default_factory=list)

    def creds(self, client: IssuedClient) -> dict[str, str]:
        """``client_id`` and ``client_secret`` as form parameters."""
        assert client.secret is not None
        return {"client_id": client.client.id, "client_secret": client.secret}

    def basic(self, client: IssuedClient) -> dict[str, str]:
        """The HTTP Basic header of ``client``."""
        assert client.secret is not None
        return {"Authorization": basic(client.client.id, client.secret)}

    def login_body(
        self,
        username: str = "manager",
        password: str = PASSWORD,
        client: IssuedClient | None = None,
        *,
        scope: str | None = None,
    ) -> bytes:
        """The body of a password grant by ``client`` (default: the first-party app)."""
        extra = {} if scope is None else {"scope": scope}
        return form(
            grant_type="password",
            username=username,
            password=password,
            **self.creds(client or self.web),
            **extra,
        )

    def principal(self, access_token: str) -> Principal | None:
        """What the authenticator makes of an access token (raises if it is refused)."""
        return self.auth.authenticate(Credential("bearer", access_token))

    def event_names(self) -> list[str]:
        """The names of the audit events so far, in order."""
        return [event.name for event in self.events]


def build_world(
    make_authenticator: AuthenticatorFactory,
    *,
    settings: Settings | None = None,
    store: Any = "sqlite://",
) -> World:
    """Build a :class:`World` on a real store, with an injected throttle clock."""
    auth = make_authenticator(store, settings=settings or Settings(secret_keys=(SECRET_KEY,)))
    clients = auth.clients
    uris = ["https://app.example/cb"]
    clock = EpochClock()
    world = World(
        auth=auth,
        endpoints=AuthEndpoints(auth, throttle=LoginThrottle(clock=clock)),
        clock=clock,
        web=clients.create_app("web", redirect_uris=uris, first_party=True),
        third=clients.create_app("partner", redirect_uris=uris, scopes=["appointments:read"]),
        public=clients.create_app("mobile", redirect_uris=uris, public=True, first_party=True),
        machine=clients.create_client(
            "billing", team="ops", scopes=["reports:read"], roles=["employee"]
        ),
    )
    auth.audit.add_hook(world.events.append)
    return world


DriverFactory = Callable[[AuthEndpoints], Driver]
DRIVERS: Mapping[str, DriverFactory] = {"wsgi": WSGIDriver, "asgi": ASGIDriver}


def make_driver(name: str, world: World) -> Driver:
    """The driver called ``name`` ("wsgi" or "asgi") for ``world``'s endpoints."""
    return DRIVERS[name](world.endpoints)


def no_store(reply: Reply) -> bool:
    """Whether the response forbids caching (RFC 6749 section 5.1)."""
    return reply.header("cache-control") == "no-store" and reply.header("pragma") == "no-cache"


# -- the authorization endpoint, as a browser sees it -----------------------------------------

AUTHORIZE = "/oauth/authorize"
#: The redirect URI every app of :func:`build_world` registered.
REDIRECT = "https://app.example/cb"
#: A Host on loopback: cookies come without ``Secure``.
LOOPBACK_HOST = "127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE verifier and its S256 challenge (RFC 7636 section 4.2)."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """A fresh pair: 64 characters of the unreserved alphabet."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorize_query(
    client_id: str | None,
    pkce: Pkce | None = None,
    **params: str | None,
) -> str:
    """The query of an authorization request; a parameter set to ``None`` is left out.

    Defaults: ``response_type=code``, :data:`REDIRECT`, ``state=xyz`` and an S256
    challenge (of ``pkce``, else a fresh one).
    """
    challenge = (pkce or Pkce.new()).challenge
    query: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    return urlencode({k: v for k, v in query.items() if v is not None})


def redirect_params(location: str | None) -> dict[str, str]:
    """The query parameters of a redirect's ``Location`` (each must appear once)."""
    assert location is not None, "not a redirect"
    pairs = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs), f"a parameter is repeated in {location}"
    return params


class Browser:
    """A browser on the WSGI app: WebTest keeps the cookies and submits the forms.

    Off loopback the requests are ``https`` (a ``Secure`` cookie comes back only
    over https, as in a real browser).
    """

    def __init__(self, endpoints: AuthEndpoints, host: str = LOOPBACK_HOST) -> None:
        loopback = host.split(":", 1)[0] in ("127.0.0.1", "localhost")
        self.app = TestApp(
            endpoints.wsgi(),
            extra_environ={
                "HTTP_HOST": host,
                "REMOTE_ADDR": PEER,
                "wsgi.url_scheme": "http" if loopback else "https",
            },
        )

    def get(self, query: str, **headers: str) -> TestResponse:
        """``GET /oauth/authorize?query``."""
        return self.app.get(f"{AUTHORIZE}?{query}", headers=headers, expect_errors=True)

    def login(
        self, page: TestResponse, username: str = "manager", password: str = PASSWORD
    ) -> TestResponse:
        """Fill in the login page's ``username`` and ``password`` and submit it."""
        login = page.forms[0]
        login["username"] = username
        login["password"] = password
        return login.submit(expect_errors=True)

    def decide(self, page: TestResponse, decision: str) -> TestResponse:
        """Press the consent page's ``allow`` or ``deny`` button."""
        return page.forms[0].submit("decision", value=decision, expect_errors=True)

    def authorize(
        self,
        client_id: str,
        pkce: Pkce,
        username: str = "manager",
        *,
        decision: str = "allow",
        **params: str | None,
    ) -> TestResponse:
        """Go through login and (when asked) consent; return the redirect back to the app."""
        page = self.get(authorize_query(client_id, pkce, **params))
        if page.status_int == 200 and page.forms and "username" in page.forms[0].fields:
            page = self.login(page, username)
        if page.status_int == 200:
            page = self.decide(page, decision)
        assert page.status_int == 302, page.text
        return page

    def code(self, client_id: str, pkce: Pkce, username: str = "manager", **params: str) -> str:
        """An authorization code for ``client_id``, with consent given."""
        location = self.authorize(client_id, pkce, username, **params).headers["Location"]
        return redirect_params(location)["code"]


class FormFinder(HTMLParser):
    """The first form of a page: its ``action`` and hidden inputs (for the ASGI tests)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._done = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif (
            tag == "input"
            and self.action is not None
            and not self._done
            and values.get("type") == "hidden"
        ):
            self.fields[values.get("name", "")] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True
