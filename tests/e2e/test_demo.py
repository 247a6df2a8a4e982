"""The demo API over real HTTP: ``authmw demo`` in its own process, the CLI in others.

Each contract route is called with a credential it admits and one it refuses.
User access tokens are not issued yet, so ``POST /account/password`` is only
refused here; tests/e2e/test_fastapi_app.py drives its user path in-process.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from authmw import Authenticator, PasswordHasher
from authmw.demo import NotADemoDatabase, banner, base_url, credentials_path, prepare
from authmw.store.sql import SQLStore
from tests.e2e.support import (
    DemoServer,
    check_stopping_keeps_the_last_use_of_a_key,
    cli_json,
    log_in_and_consent,
    run_cli,
)
from tests.throttle_window import start_well_inside_a_window

PRINCIPAL_FIELDS = {
    "kind",
    "subject",
    "roles",
    "scopes",
    "team",
    "teams",
    "credential_id",
    "client_id",
}
ERROR_FIELDS = {"error", "error_description"}
#: Longer than the default staleness bound (cache_ttl, 5 s): a liveness deadline, no timing claim.
REVOCATION_DEADLINE = 30.0
#: A banner line: ``curl -i [-H 'Name: value'] URL  # STATUS: why``.
CURL_LINE = re.compile(r"curl -i (?:-H '([^:]+): ([^']+)' )?(\S+)  # (\d{3}): .*")


def headers_for(style: str, key: str) -> dict[str, str]:
    return {
        "apikey": {"Authorization": f"apikey {key}"},
        "bearer": {"Authorization": f"Bearer {key}"},
        "x-api-key": {"X-API-Key": key},
    }[style]


def assert_refused(
    response: httpx.Response, status: int, error: str, *, challenge: bool = True
) -> dict[str, Any]:
    """Check a refusal's status, JSON body and ``WWW-Authenticate``; return the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_FIELDS
    assert body["error"] == error
    challenge_header = response.headers.get("www-authenticate")
    if challenge:
        assert challenge_header is not None
        assert 'Bearer realm="api"' in challenge_header
        assert 'apikey realm="api"' in challenge_header
        assert f'error="{error}"' in challenge_header
    else:
        assert challenge_header is None
    return body


@pytest.fixture(scope="module")
def admin_key(demo_server: DemoServer) -> dict[str, Any]:
    """A personal key of the seeded admin, made by the CLI while the server runs."""
    created: dict[str, Any] = cli_json(
        demo_server.url, "keys", "create", "--name", "e2e admin", "--owner", "admin"
    )
    return created


@pytest.fixture(scope="module")
def reports_only_key(demo_server: DemoServer) -> str:
    """A team key restricted to ``reports:read``: it lacks ``appointments:read``."""
    created = cli_json(
        demo_server.url,
        "keys",
        "create",
        "--name",
        "reports only",
        "--team",
        "blue",
        "--scope",
        "reports:read",
    )
    key: str = created["key"]
    return key


# -- the server and its banner ---------------------------------------------------------------


def test_health_is_public(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_banner_shows_the_seeded_keys_and_working_curl_lines(demo_server: DemoServer) -> None:
    out = demo_server.output()
    base = demo_server.base_url
    assert f"curl -i {base}/health" in out
    for label in ("admin", "team", "restricted"):
        assert demo_server.key(label) in out
    assert f"-H 'Authorization: apikey {demo_server.key('admin')}' {base}/me" in out
    assert f"-H 'X-API-Key: {demo_server.key('team')}' {base}/teams/blue/usage" in out
    assert f"curl -i {base}/me  # 401" in out
    assert f"{base}/reports  # 403" in out
    for password in demo_server.credentials()["users"].values():
        assert password not in out


def test_banner_curl_lines_do_what_they_say(demo_server: DemoServer) -> None:
    # Send each advertised request and compare with the status its comment promises.
    tried = 0
    for line in demo_server.output().splitlines():
        match = CURL_LINE.fullmatch(line.strip())
        if match is None:
            continue
        name, value, url, expected = match.groups()
        headers = {name: value} if name else {}
        response = httpx.get(url, headers=headers, timeout=10.0)
        assert response.status_code == int(expected), line
        tried += 1
    assert tried == 9


def test_banner_password_grant_line_works_from_any_directory(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    # The line reads manager's password from the credentials file; run it through a
    # shell, as a reader pastes it, from a directory other than the server's.
    lines = [ln for ln in demo_server.output().splitlines() if "grant_type=password" in ln]
    assert len(lines) == 1
    command = lines[0].strip().rpartition("  # ")[0]
    done = subprocess.run(
        ["bash", "-c", command],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status_line = done.stdout.splitlines()[0]
    assert status_line.split()[1] == "200", done.stdout
    assert '"access_token"' in done.stdout


def test_credentials_file_is_private(demo_server: DemoServer) -> None:
    mode = stat.S_IMODE(demo_server.credentials_file.stat().st_mode)
    assert mode == 0o600
    creds = demo_server.credentials()
    assert set(creds["users"]) == {"admin", "manager", "employee"}
    assert set(creds["keys"]) == {"admin", "team", "restricted"}
    assert set(creds["clients"]) == {"web", "reporting", "partner", "docs"}
    assert creds["clients"]["docs"]["client_secret"] == ""  # a public app has none
    assert creds["clients"]["partner"]["client_secret"].startswith("amcs_")


def test_banner_walks_through_the_authorization_code_grant(demo_server: DemoServer) -> None:
    # The banner's three lines: what to do (with the verifier), the URL, the exchange.
    lines = demo_server.output().splitlines()
    [at] = [n for n, line in enumerate(lines) if line.startswith("Authorization code with PKCE")]
    found = re.search(r"\(code_verifier (\S+)\):$", lines[at])
    assert found is not None, lines[at]
    verifier = found.group(1)
    url, exchange = lines[at + 1].strip(), lines[at + 2].strip()
    partner = demo_server.credentials()["clients"]["partner"]
    assert url.startswith(f"{demo_server.base_url}/oauth/authorize?")
    assert f"client_id={partner['client_id']}" in url
    assert "code_challenge_method=S256" in url
    assert verifier not in url  # only its hash travels through the browser

    location = log_in_and_consent(
        url,
        username="manager",
        password=demo_server.credentials()["users"]["manager"],
        app="Partner Scheduling",
    )
    returned = dict(parse_qsl(urlsplit(location).query))
    assert returned["state"] == "demo"

    # Run the curl line as written, with the code in place of CODE.
    command, _, comment = exchange.partition("  # ")
    assert comment.startswith("200: ")
    words = command.split()
    assert words[:2] == ["curl", "-i"]
    user, password = words[words.index("-u") + 1].split(":", 1)
    form = dict(words[n + 1].split("=", 1) for n, word in enumerate(words) if word == "-d")
    assert form["code"] == "CODE"
    form["code"] = returned["code"]
    token = httpx.post(words[-1], data=form, auth=(user, password), timeout=10.0)
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{demo_server.base_url}/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10.0,
    )
    assert me.json()["kind"] == "delegated"
    assert me.json()["subject"] == "manager"
    assert me.json()["client_id"] == partner["client_id"]


def test_seeded_users_have_their_roles_and_teams(demo_server: DemoServer) -> None:
    users = {u["username"]: u for u in cli_json(demo_server.url, "users", "list")}
    assert users["admin"]["roles"] == ["admin"]
    assert users["admin"]["teams"] == ["blue", "green"]
    assert users["manager"]["roles"] == ["manager"]
    assert users["manager"]["teams"] == ["blue"]
    assert users["employee"]["roles"] == ["employee"]
    assert users["employee"]["teams"] == ["green"]


def test_seeded_keys_act_as_documented(demo_server: DemoServer, client: httpx.Client) -> None:
    me = client.get("/me", headers={"X-API-Key": demo_server.key("admin")}).json()
    assert (me["kind"], me["subject"], me["team"]) == ("api_key", "admin", None)
    team = client.get("/me", headers={"X-API-Key": demo_server.key("team")}).json()
    assert (team["subject"], team["team"]) == ("team:blue", "blue")
    restricted = client.get("/me", headers={"X-API-Key": demo_server.key("restricted")}).json()
    assert restricted["roles"] == []
    assert restricted["scopes"] == ["appointments:read"]


# -- a key made by the CLI, in every header style ---------------------------------------------


@pytest.mark.parametrize("style", ["apikey", "bearer", "x-api-key"])
def test_cli_key_on_me_and_reports(
    client: httpx.Client, admin_key: dict[str, Any], style: str
) -> None:
    headers = headers_for(style, admin_key["key"])
    me = client.get("/me", headers=headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert set(body) == PRINCIPAL_FIELDS
    assert body["kind"] == "api_key"
    assert body["subject"] == "admin"
    assert body["credential_id"] == admin_key["id"]
    assert body["client_id"] is None
    reports = client.get("/reports", headers=headers)
    assert reports.status_code == 200, reports.text
    assert reports.json()["requested_by"] == "admin"


# -- refusals the middleware decides --------------------------------------------------------


def test_no_credential_is_a_401_without_error_code(client: httpx.Client) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert set(response.json()) >= ERROR_FIELDS
    challenge = response.headers["www-authenticate"]
    assert 'Bearer realm="api"' in challenge
    assert 'apikey realm="api"' in challenge
    assert "error=" not in challenge


def test_unknown_key_is_invalid_token(client: httpx.Client, admin_key: dict[str, Any]) -> None:
    # Well-formed, right checksum format, wrong secret: the same 401 as any bad key.
    forged = admin_key["key"][:-12] + "A" * 12
    response = client.get("/me", headers={"X-API-Key": forged})
    assert_refused(response, 401, "invalid_token")
    assert forged not in response.text
    assert forged not in str(response.headers)


def test_malformed_credential_is_invalid_request(client: httpx.Client) -> None:
    response = client.get("/me", headers={"Authorization": "Bearer not a token"})
    assert_refused(response, 400, "invalid_request")


def test_two_credentials_are_refused(client: httpx.Client, admin_key: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {admin_key['key']}", "X-API-Key": admin_key["key"]}
    assert_refused(client.get("/me", headers=headers), 400, "invalid_request")


# -- each contract route: one credential it admits, one it refuses -----------------------------


def test_catalog(demo_server: DemoServer, client: httpx.Client) -> None:
    allowed = client.get("/catalog", headers={"X-API-Key": demo_server.key("restricted")})
    assert allowed.status_code == 200
    assert "services" in allowed.json()
    refused = client.get("/catalog")
    assert refused.status_code == 401
    assert "error=" not in refused.headers["www-authenticate"]


def test_reports(demo_server: DemoServer, client: httpx.Client) -> None:
    allowed = client.get("/reports", headers={"X-API-Key": demo_server.key("team")})
    assert allowed.status_code == 200
    refused = client.get("/reports", headers={"X-API-Key": demo_server.key("restricted")})
    assert_refused(refused, 403, "insufficient_role", challenge=False)


def test_admin_settings(demo_server: DemoServer, client: httpx.Client) -> None:
    allowed = client.post(
        "/admin/settings",
        headers={"X-API-Key": demo_server.key("admin")},
        json={"maintenance_mode": True},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"saved": {"maintenance_mode": True}}
    refused = client.post(
        "/admin/settings",
        headers={"X-API-Key": demo_server.key("restricted")},
        json={"maintenance_mode": True},
    )
    assert_refused(refused, 403, "insufficient_role", challenge=False)
    anonymous = client.post("/admin/settings", json={"maintenance_mode": True})
    assert anonymous.status_code == 401


def test_appointments(demo_server: DemoServer, client: httpx.Client, reports_only_key: str) -> None:
    allowed = client.get("/appointments", headers={"X-API-Key": demo_server.key("restricted")})
    assert allowed.status_code == 200
    assert allowed.json()["appointments"]
    refused = client.get("/appointments", headers={"X-API-Key": reports_only_key})
    body = assert_refused(refused, 403, "insufficient_scope")
    assert body["scope"] == "appointments:read"
    assert 'scope="appointments:read"' in refused.headers["www-authenticate"]


def test_team_usage(demo_server: DemoServer, client: httpx.Client) -> None:
    team_key = {"X-API-Key": demo_server.key("team")}
    allowed = client.get("/teams/blue/usage", headers=team_key)
    assert allowed.status_code == 200
    assert allowed.json()["team"] == "blue"
    refused = client.get("/teams/green/usage", headers=team_key)
    assert_refused(refused, 403, "forbidden", challenge=False)
    # A personal key acts for an administrator, whose reach is global.
    admin = client.get("/teams/green/usage", headers={"X-API-Key": demo_server.key("admin")})
    assert admin.status_code == 200


def test_account_password_refuses_api_keys(demo_server: DemoServer, client: httpx.Client) -> None:
    body = {"current_password": "whatever-it-is", "new_password": "something-new-and-long"}
    refused = client.post(
        "/account/password", headers={"X-API-Key": demo_server.key("admin")}, json=body
    )
    assert_refused(refused, 403, "forbidden", challenge=False)
    assert client.post("/account/password", json=body).status_code == 401


# -- the CLI and the server together -----------------------------------------------------------


def test_revocation_by_the_cli_reaches_the_server(
    demo_server: DemoServer, client: httpx.Client
) -> None:
    created = cli_json(demo_server.url, "keys", "create", "--name", "doomed", "--owner", "admin")
    headers = {"X-API-Key": created["key"]}
    assert client.get("/me", headers=headers).status_code == 200  # now in the server's cache
    revoked = cli_json(demo_server.url, "keys", "revoke", created["id"])
    assert revoked["status"] == "revoked"
    deadline = time.monotonic() + REVOCATION_DEADLINE
    response = client.get("/me", headers=headers)
    while response.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
        response = client.get("/me", headers=headers)
    assert_refused(response, 401, "invalid_token")


def test_openapi_lists_both_security_schemes(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An authmw API key.",
    }
    assert schemes["Bearer"]["type"] == "http"
    assert schemes["Bearer"]["scheme"] == "bearer"
    protected = spec["paths"]["/reports"]["get"]["security"]
    assert {"ApiKey": []} in protected
    assert {"Bearer": []} in protected
    assert "security" not in spec["paths"]["/health"]["get"]
    assert client.get("/docs").status_code == 200


def test_secrets_stay_out_of_the_server_log(
    demo_server: DemoServer, client: httpx.Client, admin_key: dict[str, Any]
) -> None:
    client.get("/me", headers={"X-API-Key": admin_key["key"]})
    client.get("/me", headers={"Authorization": f"Bearer {admin_key['key']}"})
    out = demo_server.output()
    assert admin_key["key"] not in out
    for password in demo_server.credentials()["users"].values():
        assert password not in out


def test_python_m_authmw_reports_errors_without_traceback(demo_server: DemoServer) -> None:
    done = run_cli(demo_server.url, "keys", "revoke", "no-such-key")
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: no key with id 'no-such-key'"
    assert "Traceback" not in done.stdout + done.stderr


# -- restarting ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DemoServer]:
    server = DemoServer(tmp_path)
    yield server
    server.stop()


def test_restart_keeps_the_seed_and_reports_a_revoked_key(fresh_server: DemoServer) -> None:
    server = fresh_server
    server.start()
    first = server.credentials_file.read_text()
    server.stop()
    restricted = server.credentials()["keys"]["restricted"]
    cli_json(server.url, "keys", "revoke", restricted["id"])

    server.start()
    assert server.credentials_file.read_text() == first  # nothing seeded twice
    assert len(cli_json(server.url, "users", "list")) == 3
    assert len(cli_json(server.url, "keys", "list")) == 3
    second_start = server.output().rpartition("--- start")[2]
    assert "revoked" in second_start
    assert restricted["key"] not in second_start  # a dead key is not advertised
    assert server.key("admin") in second_start
    response = httpx.get(
        f"{server.base_url}/me", headers={"X-API-Key": server.key("admin")}, timeout=10.0
    )
    assert response.status_code == 200


def test_stopping_the_server_keeps_the_last_use_of_a_key(tmp_path: Path) -> None:
    # uvicorn ends the process by re-raising SIGTERM once the app has shut down.
    check_stopping_keeps_the_last_use_of_a_key(tmp_path, "fastapi")


def test_the_demo_counts_failed_logins_by_the_peer_not_x_forwarded_for(
    fresh_server: DemoServer,
) -> None:
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a local client
    # could then pick a new address for each guess and never meet the
    # per-account-and-address limit (5 failures).
    server = fresh_server
    server.start()
    web = server.credentials()["clients"]["web"]
    statuses = []
    start_well_inside_a_window()
    for attempt in range(6):
        response = httpx.post(
            f"{server.base_url}/oauth/token",
            auth=(web["client_id"], web["client_secret"]),
            data={"grant_type": "password", "username": "employee", "password": "not it"},
            headers={"X-Forwarded-For": f"203.0.113.{attempt + 1}"},
            timeout=30.0,
        )
        statuses.append(response.status_code)
    assert statuses == [400] * 5 + [429]


# -- seeding, in-process ---------------------------------------------------------------------


@pytest.fixture
def seed_db(tmp_path: Path) -> Iterator[tuple[str, Authenticator]]:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    auth = Authenticator(SQLStore(url), passwords=PasswordHasher(memory_cost=1024, time_cost=1))
    yield url, auth
    auth.close()


def test_prepare_seeds_once(seed_db: tuple[str, Authenticator]) -> None:
    url, auth = seed_db
    first = prepare(auth, url)
    assert first.path is not None
    saved = first.path.read_text()
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert {u.username for u in auth.users.list()} == {"admin", "manager", "employee"}
    assert len(auth.keys.list()) == 3
    for name, password in first.passwords.items():
        assert auth.passwords.verify(password, auth.users.get(name).password_hash)[0]

    apps = {c.name: c for c in auth.clients.list(kind="app")}
    partner, docs = apps["Partner Scheduling"], apps["demo API docs"]
    assert partner.redirect_uris == ("http://127.0.0.1/callback",)
    assert partner.scopes == {"appointments:read", "reports:read"}
    assert not partner.public
    assert not partner.first_party
    assert docs.redirect_uris == ("http://127.0.0.1/docs/oauth2-redirect",)
    assert docs.public
    assert docs.secret_hash is None
    assert first.clients["docs"] == {"client_id": docs.id, "client_secret": ""}
    assert auth.clients.authenticate(partner.id, first.clients["partner"]["client_secret"])

    again = prepare(auth, url)
    assert again.keys == first.keys
    assert again.passwords == first.passwords
    assert again.clients == first.clients
    assert first.path.read_text() == saved
    assert len(auth.users.list()) == 3
    assert len(auth.keys.list()) == 3
    assert len(auth.clients.list()) == 4


def test_banner_names_the_credentials_file_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `authmw demo` on its default database, a path relative to where it runs.
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///demo.db"
    auth = Authenticator(SQLStore(url), passwords=PasswordHasher(memory_cost=1024, time_cost=1))
    try:
        text = banner(auth, prepare(auth, url), framework="fastapi", host="127.0.0.1", port=8000)
    finally:
        auth.close()
    (line,) = [ln for ln in text.splitlines() if "grant_type=password" in ln]
    assert repr(str(tmp_path.resolve() / "demo.db.demo.json")) in line


def test_prepare_adds_new_demo_apps_to_an_older_demo_database(
    seed_db: tuple[str, Authenticator],
) -> None:
    # A credentials file from before the partner and docs apps existed: the next
    # start registers them, and keeps every user, key and client it had.
    url, auth = seed_db
    first = prepare(auth, url)
    assert first.path is not None
    older = json.loads(first.path.read_text())
    for label in ("partner", "docs"):
        del older["clients"][label]
    first.path.write_text(json.dumps(older))

    again = prepare(auth, url)
    assert {k: again.clients[k] for k in ("web", "reporting")} == older["clients"]
    assert again.keys == first.keys
    for label in ("partner", "docs"):
        assert again.clients[label]["client_id"] != first.clients[label]["client_id"]
    assert json.loads(first.path.read_text())["clients"] == again.clients


def test_prepare_refuses_a_database_with_users_of_its_own(
    seed_db: tuple[str, Authenticator],
) -> None:
    url, auth = seed_db
    auth.store.create_schema()
    auth.users.create("alice", password="alice-password", roles=["admin"])
    with pytest.raises(NotADemoDatabase, match="already has users"):
        prepare(auth, url)
    assert [u.username for u in auth.users.list()] == ["alice"]
    assert auth.keys.list() == []
    path = credentials_path(url)
    assert path is not None
    assert not path.exists()


def test_prepare_reseeds_a_recreated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    hasher = PasswordHasher(memory_cost=1024, time_cost=1)
    auth = Authenticator(SQLStore(url), passwords=hasher)
    old = prepare(auth, url)
    auth.close()
    for leftover in tmp_path.glob("seed.db*"):
        if not leftover.name.endswith(".demo.json"):
            leftover.unlink()
    auth = Authenticator(SQLStore(url), passwords=hasher)
    try:
        new = prepare(auth, url)
        assert set(new.keys) == set(old.keys)
        assert all(new.keys[label]["id"] != old.keys[label]["id"] for label in old.keys)
        assert new.passwords.keys() == old.passwords.keys()
        assert new.path is not None
        assert json.loads(new.path.read_text())["keys"] == new.keys
    finally:
        auth.close()


def test_banner_reports_keys_that_no_longer_work(seed_db: tuple[str, Authenticator]) -> None:
    url, auth = seed_db
    demo = prepare(auth, url)
    auth.keys.revoke(demo.keys["restricted"]["id"])
    auth.users.set_roles("admin", ["manager"])  # a personal key needs its owner to be admin
    text = banner(auth, demo, framework="fastapi", host="0.0.0.0", port=8123)  # noqa: S104
    assert "http://127.0.0.1:8123/health" in text
    assert demo.keys["team"]["key"] in text
    for label, why in (("restricted", "revoked"), ("admin", "lost the admin role")):
        assert demo.keys[label]["key"] not in text
        [line] = [line for line in text.splitlines() if line.strip().startswith(f"{label} ")]
        assert why in line
    assert "keys create --name 'restricted' --owner admin --scope appointments:read" in text


def test_in_memory_demo_keeps_nothing() -> None:
    auth = Authenticator(
        SQLStore("sqlite://"), passwords=PasswordHasher(memory_cost=1024, time_cost=1)
    )
    try:
        demo = prepare(auth, "sqlite://")
        assert demo.path is None
        assert len(demo.keys) == 3
        assert "not kept" in banner(auth, demo, framework="fastapi", host="127.0.0.1", port=1)
    finally:
        auth.close()


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("0.0.0.0", 80, "http://127.0.0.1:80"),  # noqa: S104
        ("::", 8080, "http://[::1]:8080"),
        ("::1", 1, "http://[::1]:1"),
        ("localhost", 5, "http://localhost:5"),
    ],
)
def test_base_url(host: str, port: int, url: str) -> None:
    assert base_url(host, port) == url


def test_demo_command_refuses_a_database_with_users_of_its_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    assert run_cli(url, "init").returncode == 0
    cli_json(url, "users", "create", "alice", "--role", "admin", "--password-stdin", input="p" * 12)
    done = run_cli(url, "demo", "--port", "1")
    assert done.returncode == 1
    assert "already has users" in done.stderr
    assert "Traceback" not in done.stderr
    assert [u["username"] for u in cli_json(url, "users", "list")] == ["alice"]
