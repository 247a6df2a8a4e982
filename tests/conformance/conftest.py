"""Fixtures of the conformance suite: the three demo apps in-process, and the three demo servers.

In-process, all three apps share ONE authenticator (in-memory SQLite, the demo's
users and keys, plus a revoked key), so every framework sees the same keys and
the same principals. Over HTTP each ``authmw demo`` process seeds its own
database, so each server comes with its own keys.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from authmw import Authenticator, PasswordHasher, Policy
from authmw.demo import KEYS, USERS
from authmw.store.sql import SQLStore
from tests.conformance.support import FRAMEWORKS, Caller, HttpClient, call_asgi, call_wsgi
from tests.e2e.support import DemoServer, cli_json, run_cli

#: The demo users' password in-process (nobody logs in: the table only uses API keys).
PASSWORD = "conformance suite password, long enough"


@dataclass
class World:
    """Callers for the three frameworks, and the keys (by label) valid in the world they share."""

    callers: dict[str, Caller]
    keys: dict[str, str]
    key_ids: dict[str, str]
    servers: dict[str, DemoServer] = field(default_factory=dict)


def seed(auth: Authenticator) -> tuple[dict[str, str], dict[str, str]]:
    """Create the demo's users and keys on ``auth``, and a revoked key; return keys and ids."""
    auth.store.create_schema()
    for user in USERS:
        auth.users.create(user.name, password=PASSWORD, roles=user.roles, teams=user.teams)
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    for spec in KEYS:
        issued = auth.keys.create(
            name=spec.name, owner=spec.owner, team=spec.team, scopes=spec.scopes
        )
        keys[spec.label], ids[spec.label] = issued.key, issued.record.id
    revoked = auth.keys.create(name="conformance revoked", owner="admin")
    auth.keys.revoke(revoked.record.id)
    keys["revoked"], ids["revoked"] = revoked.key, revoked.record.id
    return keys, ids


@pytest.fixture(scope="session")
def shared_auth() -> Iterator[Authenticator]:
    """The one authenticator all three in-process apps use."""
    auth = Authenticator(
        SQLStore("sqlite://"),
        policy=Policy.default(),
        passwords=PasswordHasher(memory_cost=1024, time_cost=1),
    )
    yield auth
    auth.close()


@pytest.fixture(scope="session")
def shared_keys(shared_auth: Authenticator) -> tuple[dict[str, str], dict[str, str]]:
    """The keys of the shared authenticator, created once per session: values and ids."""
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
    shared_keys: tuple[dict[str, str], dict[str, str]],
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
    keys, ids = shared_keys
    callers = {
        "fastapi": call_asgi(fastapi_app(shared_auth)),
        "flask": call_wsgi(flask_app(shared_auth)),
        "django": call_wsgi(django, around=django_context),
    }
    assert tuple(callers) == FRAMEWORKS
    return World(callers, keys, ids)


# -- over real HTTP


def _start(framework: str, directory: Path) -> tuple[DemoServer, dict[str, str], dict[str, str]]:
    """Start one demo server; add a revoked key with the CLI; return it with its keys and ids."""
    server = DemoServer(directory, framework=framework)
    server.start()
    try:
        seeded = server.credentials()["keys"]
        keys = {label: entry["key"] for label, entry in seeded.items()}
        ids = {label: entry["id"] for label, entry in seeded.items()}
        # The revoked key is created and revoked while the server runs: the demo
        # seeds only a database without users, so it cannot be made beforehand.
        # The server has never seen it, so no cache can hold it as valid.
        made = cli_json(server.url, "keys", "create", "--name", "revoked", "--owner", "admin")
        done = run_cli(server.url, "keys", "revoke", made["id"])
        assert done.returncode == 0, done.stdout + done.stderr
        keys["revoked"], ids["revoked"] = made["key"], made["id"]
    except BaseException:
        server.stop()
        raise
    return server, keys, ids


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    """The three demo servers over HTTP, started side by side; one world each (own keys)."""
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
            server, keys, ids = futures[name].result()
            client = HttpClient(server.base_url)
            stack.callback(client.close)
            worlds[name] = World({name: client}, keys, ids, {name: server})
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
