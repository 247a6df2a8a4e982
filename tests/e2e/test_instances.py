"""Four server processes on one PostgreSQL and one Redis, as a scaled-out deployment runs.

Each instance is its own uvicorn process serving the FastAPI demo's
``create_app`` factory, configured only by the environment. The database is
prepared by the CLI, as separate processes that are themselves on Redis, so
what they change reaches the running instances the way an operator's would.

``AUTHMW_CACHE_TTL=3600``: a credential an instance has verified stays in its
cache for an hour. Anything an instance learns within this module's deadlines
(seconds) therefore came over Redis, not from its cache running out. The
deadlines are liveness bounds, not timing claims.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.support import UvicornServer, cli_json_with, run_cli_with
from tests.throttle_window import start_well_inside_a_window

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg", reason="needs the postgres extra")
pytest.importorskip("redis", reason="needs the redis extra")
pytest.importorskip("uvicorn", reason="needs the fastapi extra")

POSTGRES_URL = os.environ.get("AUTHMW_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("AUTHMW_TEST_REDIS_URL", "")

#: How many instances the deployment runs.
INSTANCES = 4
#: How long a change may take to be seen everywhere before a test gives up.
DEADLINE = 10.0
#: The invalidation channel (``RedisBus``'s default: the environment cannot name another).
CHANNEL = "authmw:invalidate"
#: Failed logins allowed per account and address before the throttle refuses (the default).
LOGIN_LIMIT = 5

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL),
    reason="set AUTHMW_TEST_POSTGRES_URL and AUTHMW_TEST_REDIS_URL to run",
)


def _password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


@dataclass
class Deployment:
    """The database, the environment the CLI runs with, and the running instances."""

    url: str
    cli_env: dict[str, str]
    servers: list[UvicornServer]
    client_id: str
    client_secret: str
    #: An address of this run's own (sent in ``X-Forwarded-For``; loopback is a
    #: trusted proxy), so the shared login counters of other runs never mix in.
    address: str

    def cli(self, *args: str, input: str | None = None) -> Any:
        return cli_json_with(self.cli_env, self.url, *args, input=input)

    def create_user(self, role: str = "manager") -> tuple[str, str]:
        name, password = f"user-{uuid.uuid4().hex[:10]}", _password()
        self.cli("users", "create", name, "--role", role, "--password-stdin", input=password)
        return name, password

    def token(self, server: UvicornServer, **form: str) -> httpx.Response:
        return httpx.post(
            f"{server.base_url}/oauth/token",
            data=form,
            auth=(self.client_id, self.client_secret),
            headers={"X-Forwarded-For": self.address},
            timeout=10.0,
        )

    def log_in(self, name: str, password: str) -> dict[str, Any]:
        answer = self.token(
            self.servers[0], grant_type="password", username=name, password=password
        )
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens


def _subscribers(client: Any) -> int:
    [(_, count)] = client.pubsub_numsub(CHANNEL)
    return int(count)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A private schema prepared by the CLI, and four instances on it and on Redis."""
    import redis  # noqa: PLC0415 - optional extra, checked above

    schema = f"authmw_e2e_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    servers: list[UvicornServer] = []
    watcher = redis.Redis.from_url(REDIS_URL)
    try:
        # Every process (each instance, each CLI run) works in the private schema.
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        cli_env = {"AUTHMW_SECRET_KEY": secrets.token_urlsafe(32), "AUTHMW_REDIS_URL": REDIS_URL}
        init = run_cli_with(cli_env, url, "init", "--json")
        assert init.returncode == 0, init.stderr
        app = cli_json_with(
            cli_env,
            url,
            *("apps", "create", "--name", "e2e-web", "--first-party"),
            *("--redirect-uri", "https://app.example/callback"),
        )
        server_env = {
            **cli_env,
            "AUTHMW_DATABASE_URL": url,
            "AUTHMW_CACHE_TTL": "3600",
            "AUTHMW_TRUSTED_PROXIES": "127.0.0.1",
        }
        before = _subscribers(watcher)
        directory = tmp_path_factory.mktemp("instances")
        for i in range(INSTANCES):
            server = UvicornServer(directory, f"instance-{i}", url, server_env)
            servers.append(server)
            server.start()
        # An instance caches nothing until its bus is subscribed: wait for all four,
        # so the tests below really warm every cache they say they warm.
        deadline = time.monotonic() + DEADLINE
        while _subscribers(watcher) < before + INSTANCES and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _subscribers(watcher) >= before + INSTANCES, "the instances did not subscribe"
        # 198.18.0.0/15 is set aside for benchmarks (RFC 2544): no real client has it.
        network = ipaddress.ip_network("198.18.0.0/15")
        address = str(network[secrets.randbelow(network.num_addresses - 2) + 1])
        yield Deployment(url, cli_env, servers, app["client_id"], app["client_secret"], address)
    finally:
        for server in servers:
            server.stop()
        watcher.close()
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


@pytest.fixture
def servers(deployment: Deployment) -> list[UvicornServer]:
    """The running instances (a failing test's report then carries their output)."""
    return deployment.servers


def _status(server: UvicornServer, credential: str) -> int:
    headers = {"Authorization": f"Bearer {credential}"}
    return httpx.get(f"{server.base_url}/me", headers=headers, timeout=10.0).status_code


def _statuses_once_refused(servers: list[UvicornServer], credential: str) -> list[int]:
    """Poll every instance until each refuses ``credential`` or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    statuses = [_status(s, credential) for s in servers]
    while any(code == 200 for code in statuses) and time.monotonic() < deadline:
        time.sleep(0.05)
        statuses = [
            code if code != 200 else _status(s, credential)
            for s, code in zip(servers, statuses, strict=True)
        ]
    return statuses


def _works_everywhere(servers: list[UvicornServer], credential: str) -> None:
    # Verified once by every instance: from now on each answers from its cache.
    assert [_status(s, credential) for s in servers] == [200] * INSTANCES


def test_instances_serve_one_database(deployment: Deployment, servers: list[UvicornServer]) -> None:
    name, _ = deployment.create_user(role="admin")
    key = deployment.cli("keys", "create", "--name", "everywhere", "--owner", name)
    for server in servers:
        me = httpx.get(f"{server.base_url}/me", headers={"X-API-Key": key["key"]}, timeout=10.0)
        assert me.status_code == 200, me.text
        assert me.json()["subject"] == name
        assert me.json()["credential_id"] == key["id"]


def test_key_revoked_by_the_cli_is_refused_by_every_instance(
    deployment: Deployment, servers: list[UvicornServer]
) -> None:
    name, _ = deployment.create_user(role="admin")
    key = deployment.cli("keys", "create", "--name", "to-revoke", "--owner", name)
    _works_everywhere(servers, key["key"])
    other = deployment.cli("keys", "create", "--name", "to-keep", "--owner", name)
    _works_everywhere(servers, other["key"])

    revoked = deployment.cli("keys", "revoke", key["id"])
    assert revoked["status"] == "revoked"

    assert _statuses_once_refused(servers, key["key"]) == [401] * INSTANCES
    # Only that key: its owner's other key is untouched everywhere.
    assert [_status(s, other["key"]) for s in servers] == [200] * INSTANCES


def test_access_token_revoked_on_one_instance_is_refused_by_all(
    deployment: Deployment, servers: list[UvicornServer]
) -> None:
    name, password = deployment.create_user()
    tokens = deployment.log_in(name, password)
    access = tokens["access_token"]
    _works_everywhere(servers, access)

    revoked = httpx.post(
        f"{servers[1].base_url}/oauth/revoke",
        data={"token": access, "token_type_hint": "access_token"},
        auth=(deployment.client_id, deployment.client_secret),
        timeout=10.0,
    )
    assert revoked.status_code == 200, revoked.text

    assert _statuses_once_refused(servers, access) == [401] * INSTANCES


def test_refresh_token_raced_against_every_instance_succeeds_once(
    deployment: Deployment, servers: list[UvicornServer]
) -> None:
    name, password = deployment.create_user()
    tokens = deployment.log_in(name, password)
    _works_everywhere(servers, tokens["access_token"])
    barrier = threading.Barrier(INSTANCES)
    answers: list[httpx.Response | BaseException | None] = [None] * INSTANCES

    def send(i: int) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        try:
            with httpx.Client(timeout=10.0) as http:
                http.get(f"{servers[i].base_url}/health")  # connected before the barrier
                barrier.wait(timeout=10.0)
                answers[i] = http.post(
                    f"{servers[i].base_url}/oauth/token",
                    data=form,
                    auth=(deployment.client_id, deployment.client_secret),
                    headers={"X-Forwarded-For": deployment.address},
                )
        except BaseException as exc:  # reported below, with the others' answers
            answers[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(INSTANCES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30.0)
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    assert len(responses) == INSTANCES, answers
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (INSTANCES - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"] == "invalid_grant"
    [winner] = [r.json() for r in responses if r.status_code == 200]

    # A refresh token used twice means it leaked: the whole family ends, everywhere.
    assert _statuses_once_refused(servers, winner["access_token"]) == [401] * INSTANCES
    assert _statuses_once_refused(servers, tokens["access_token"]) == [401] * INSTANCES
    for server in servers:
        again = deployment.token(
            server, grant_type="refresh_token", refresh_token=winner["refresh_token"]
        )
        assert again.status_code == 400, again.text
        assert again.json()["error"] == "invalid_grant"


def test_failed_logins_are_counted_across_instances(
    deployment: Deployment, servers: list[UvicornServer]
) -> None:
    name, password = deployment.create_user()
    # Four processes, one clock: the failures and the refusals all fall in one bucket.
    start_well_inside_a_window()
    for attempt in range(LOGIN_LIMIT):
        server = servers[attempt % INSTANCES]
        failed = deployment.token(
            server, grant_type="password", username=name, password="not-the-password-" + name
        )
        assert failed.status_code == 400, (attempt, failed.text)
        assert failed.json()["error"] == "invalid_grant"
    # Five failures, spread over four instances: the limit is reached on every one,
    # even for the right password (the throttle answers before the password is checked).
    for server in servers:
        refused = deployment.token(server, grant_type="password", username=name, password=password)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
    # Another account from the same address is not held up by this one's failures.
    other, other_password = deployment.create_user()
    allowed = deployment.token(
        servers[LOGIN_LIMIT % INSTANCES],
        grant_type="password",
        username=other,
        password=other_password,
    )
    assert allowed.status_code == 200, allowed.text


def test_password_set_by_the_cli_ends_the_users_tokens_everywhere(
    deployment: Deployment, servers: list[UvicornServer]
) -> None:
    name, password = deployment.create_user()
    tokens = deployment.log_in(name, password)
    bystander, bystander_password = deployment.create_user()
    kept = deployment.log_in(bystander, bystander_password)
    _works_everywhere(servers, tokens["access_token"])
    _works_everywhere(servers, kept["access_token"])

    changed = deployment.cli("users", "set-password", name, "--password-stdin", input=_password())
    assert changed["username"] == name

    assert _statuses_once_refused(servers, tokens["access_token"]) == [401] * INSTANCES
    again = deployment.token(
        servers[3], grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"
    # Another user's tokens live on.
    assert [_status(s, kept["access_token"]) for s in servers] == [200] * INSTANCES
