"""Fixtures of the conformance suite: the three demo apps in-process, and the three demo servers.

In-process, all three apps share ONE authenticator (in-memory SQLite, the demo's
users and keys, plus a revoked key; the demo's first-party app "web" and machine
client "reporting", and tokens issued to them, one revoked), so every framework
sees the same keys, the same tokens and the same principals. Over HTTP each
``authmw demo`` process seeds its own database, so each server comes with its
own keys and clients, and the tokens come from its own ``/oauth/token``.

Django has one set of settings per process. ``create_app`` configures them on
its first call; when something else configured them first (the Django tests, in
a run of the whole tree), it only swaps in the authenticator. So every request
to the Django app runs under ``override_settings`` naming the demo's URLconf and
this suite's authenticator: whatever ran before, and whatever a later test
does, the Django app answers with the shared authenticator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from authmw import Authenticator, PasswordHasher, Policy, Settings
from authmw.demo import CLIENTS, KEYS, USERS
from authmw.store.sql import SQLStore
from authmw.tokens import IssuedTokens
from tests.conformance.support import FRAMEWORKS, HttpClient, World, call_asgi, call_wsgi
from tests.e2e.support import DemoServer, cli_json, run_cli

#: The demo users' password in-process (tokens are issued directly: nobody logs in).
PASSWORD = "conformance suite password, long enough"
#: The in-process authenticator's signing key, for its access tokens.
SIGNING_KEY = "conformance suite signing key, only ever used in memory"

_WEB = next(c for c in CLIENTS if c.label == "web")
_REPORTING = next(c for c in CLIENTS if c.label == "reporting")
assert _WEB.first_party, "the password grant needs a first-party app"


@dataclass(frozen=True, slots=True)
class Seeded:
    """The credentials :func:`seed` made: values, ids and client ids, by label."""

    secrets: dict[str, str]
    ids: dict[str, str]
    clients: dict[str, str]


def seed(auth: Authenticator) -> Seeded:
    """Create the demo's users, keys and two clients on ``auth``, a revoked key, and tokens.

    The tokens are what the token endpoint would issue: a user token carries
    every scope its user's roles allow (the password grant with no ``scope``
    asked for, through an app registered without scopes), the client token the
    client's registered scopes. ``token_revoked`` is revoked as ``/oauth/revoke``
    revokes it.
    """
    auth.store.create_schema()
    for user in USERS:
        auth.users.create(user.name, password=PASSWORD, roles=user.roles, teams=user.teams)
    secrets: dict[str, str] = {}
    ids: dict[str, str] = {}
    for spec in KEYS:
        made = auth.keys.create(
            name=spec.name, owner=spec.owner, team=spec.team, scopes=spec.scopes
        )
        secrets[spec.label], ids[spec.label] = made.key, made.record.id
    revoked = auth.keys.create(name="conformance revoked", owner="admin")
    auth.keys.revoke(revoked.record.id)
    secrets["revoked"], ids["revoked"] = revoked.key, revoked.record.id

    web = auth.clients.create_app(
        _WEB.name,
        redirect_uris=_WEB.redirect_uris,
        scopes=_WEB.scopes,
        first_party=_WEB.first_party,
    ).client
    reporting = auth.clients.create_client(
        _REPORTING.name, team=_REPORTING.team or "", scopes=_REPORTING.scopes
    ).client

    def login(name: str) -> IssuedTokens:
        user = auth.store.get_user(name)
        assert user is not None, name
        return auth.tokens.issue_for_user(user, web, auth.policy.scopes_for(user.roles))

    issued = {
        "user_employee": login("employee"),
        "user_manager": login("manager"),
        "client": auth.tokens.issue_for_client(reporting, reporting.scopes),
        "token_revoked": login("employee"),
    }
    for label, tokens in issued.items():
        secrets[label], ids[label] = tokens.access_token, tokens.token_id
    assert auth.tokens.revoke(secrets["token_revoked"], web)
    return Seeded(secrets, ids, {"web": web.id, "reporting": reporting.id})


@pytest.fixture(scope="session")
def shared_auth() -> Iterator[Authenticator]:
    """The one authenticator all three in-process apps use."""
    auth = Authenticator(
        SQLStore("sqlite://"),
        policy=Policy.default(),
        settings=Settings(secret_keys=(SIGNING_KEY,)),
        passwords=PasswordHasher(memory_cost=1024, time_cost=1),
    )
    yield auth
    auth.close()


@pytest.fixture(scope="session")
def shared_credentials(shared_auth: Authenticator) -> Seeded:
    """The keys, clients and tokens of the shared authenticator, created once per session."""
    return seed(shared_auth)


@pytest.fixture(scope="session")
def django_context(shared_auth: Authenticator) -> Callable[[], Any]:
    """``django_context()``: a context where Django serves the demo on the shared authenticator."""
    from django.conf import settings  # noqa: PLC0415 - Django is optional for the tests tree

    from examples.django_app import app as demo  # noqa: PLC0415

    if not settings.configured:
        demo.create_app(shared_auth)  # the first call configures Django, once per process
    from django.test import override_settings  # noqa: PLC0415 - needs configured settings

    ours: dict[str, Any] = {
        "ROOT_URLCONF": demo.SETTINGS["ROOT_URLCONF"],
        # One dict for the whole session: authmw_django rebuilds its config only when it changes.
        "AUTHMW": {"AUTHENTICATOR": shared_auth},
    }
    return lambda: override_settings(**ours)


@pytest.fixture(scope="session")
def in_process(
    shared_auth: Authenticator,
    shared_credentials: Seeded,
    django_context: Callable[[], Any],
) -> World:
    """The three demo apps in-process, on the shared authenticator."""
    from examples.django_app.app import create_app as django_app  # noqa: PLC0415
    from examples.fastapi_app.app import create_app as fastapi_app  # noqa: PLC0415
    from examples.flask_app.app import create_app as flask_app  # noqa: PLC0415

    with django_context():
        # Settings are configured by now, so this only hands Django the authenticator,
        # and only inside the override: nothing leaks to tests that run later.
        django = django_app(shared_auth)
    assert django.authenticator is shared_auth
    callers = {
        "fastapi": call_asgi(fastapi_app(shared_auth)),
        "flask": call_wsgi(flask_app(shared_auth)),
        "django": call_wsgi(django, around=django_context),
    }
    assert tuple(callers) == FRAMEWORKS
    seeded = shared_credentials
    return World(callers, seeded.secrets, seeded.ids, seeded.clients)


# -- over real HTTP


def _token(http: httpx.Client, client: dict[str, str], **form: str) -> str:
    """Ask the server's ``/oauth/token`` for an access token (client auth by HTTP Basic)."""
    answer = http.post(
        "/oauth/token", data=form, auth=(client["client_id"], client["client_secret"])
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _token_id(http: httpx.Client, client: dict[str, str], token: str) -> str:
    """The token's id (``jti``), as ``/oauth/introspect`` tells the client it was issued to."""
    answer = http.post(
        "/oauth/introspect",
        data={"token": token},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["active"] is True, data
    token_id: str = data["jti"]
    return token_id


def _tokens(server: DemoServer, seeded: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Get the table's tokens from the server's own OAuth2 endpoints: values and ids.

    Users log in with the password grant of the first-party app "web"; the machine
    client "reporting" uses client credentials; ``token_revoked`` is a login of
    employee revoked through ``/oauth/revoke``.
    """
    web, reporting = seeded["clients"]["web"], seeded["clients"]["reporting"]
    passwords: dict[str, str] = seeded["users"]

    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:

        def login(name: str) -> str:
            return _token(http, web, grant_type="password", username=name, password=passwords[name])

        tokens = {
            "user_employee": login("employee"),
            "user_manager": login("manager"),
            "client": _token(http, reporting, grant_type="client_credentials"),
            "token_revoked": login("employee"),
        }
        ids = {
            label: _token_id(http, reporting if label == "client" else web, tokens[label])
            for label in ("user_employee", "user_manager", "client")
        }
        done = http.post(
            "/oauth/revoke",
            data={"token": tokens["token_revoked"]},
            auth=(web["client_id"], web["client_secret"]),
        )
        assert done.status_code == 200, done.text
    return tokens, ids


def _start(framework: str, directory: Path) -> tuple[DemoServer, Seeded]:
    """Start one demo server; add a revoked key (CLI) and tokens (HTTP); return its credentials."""
    server = DemoServer(directory, framework=framework)
    server.start()
    try:
        seeded = server.credentials()
        secrets = {label: entry["key"] for label, entry in seeded["keys"].items()}
        ids = {label: entry["id"] for label, entry in seeded["keys"].items()}
        clients = {label: entry["client_id"] for label, entry in seeded["clients"].items()}
        # The revoked key is created and revoked while the server runs: the demo
        # seeds only a database without users, so it cannot be made beforehand.
        # The server has never seen it, so no cache can hold it as valid.
        made = cli_json(server.url, "keys", "create", "--name", "revoked", "--owner", "admin")
        done = run_cli(server.url, "keys", "revoke", made["id"])
        assert done.returncode == 0, done.stdout + done.stderr
        secrets["revoked"], ids["revoked"] = made["key"], made["id"]
        tokens, token_ids = _tokens(server, seeded)
        secrets |= tokens
        ids |= token_ids
    except BaseException:
        server.stop()
        raise
    return server, Seeded(secrets, ids, clients)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    """The three demo servers over HTTP, started side by side; one world each (own credentials)."""
    worlds: dict[str, World] = {}
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(len(FRAMEWORKS)) as pool:
            futures = {
                name: pool.submit(_start, name, tmp_path_factory.mktemp(f"demo-{name}"))
                for name in FRAMEWORKS
            }
        for name in FRAMEWORKS:  # every start has finished: stop all, however any ended
            if futures[name].exception() is None:
                stack.callback(futures[name].result()[0].stop)
        for name in FRAMEWORKS:
            server, seeded = futures[name].result()
            client = HttpClient(server.base_url)
            stack.callback(client.close)
            worlds[name] = World(
                {name: client}, seeded.secrets, seeded.ids, seeded.clients, {name: server}
            )
        yield worlds


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the output of the demo servers a failed test used to its report."""
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        worlds: Mapping[str, World] = funcargs.get("live", {})
        for world in worlds.values():
            for server in world.servers.values():
                report.sections.append((f"{server.framework} demo output", server.output()))
    return report
