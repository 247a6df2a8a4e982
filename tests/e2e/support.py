"""Helpers of the end-to-end tests: a real ``authmw demo`` process, the CLI as a process.

Both run the authmw these tests import (the source tree under test), whatever
way it is installed, through ``python -m authmw`` with that tree first on
``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

__all__ = [
    "DemoServer",
    "HtmlForm",
    "UvicornServer",
    "authmw_command",
    "check_authorization_code_with_real_clients",
    "check_cli_revocation_reaches",
    "check_token_flows_with_real_clients",
    "check_wsgi_demo_contract",
    "cli_json",
    "cli_json_with",
    "free_port",
    "log_in_and_consent",
    "parse_form",
    "run_cli",
    "run_cli_with",
]

import httpx
import pytest

import authmw
import authmw_starlette

#: How long a server may take to answer /health. Generous: CI machines can be slow.
STARTUP_TIMEOUT = 60.0
#: How long a CLI process may run.
CLI_TIMEOUT = 60.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMW_")}
    roots = {str(Path(m.__file__ or "").resolve().parents[1]) for m in (authmw, authmw_starlette)}
    env["PYTHONPATH"] = os.pathsep.join([*sorted(roots), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


ENV = _environment()


def authmw_command(url: str, *args: str) -> list[str]:
    """The argv of ``authmw --db URL ARGS...``."""
    return [sys.executable, "-m", "authmw", "--db", url, *args]


def run_cli(url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as its own process; never raises on a non-zero exit."""
    return subprocess.run(
        authmw_command(url, *args),
        input=input,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def cli_json(url: str, *args: str, input: str | None = None) -> Any:
    """Run a CLI command with ``--json``; it must succeed and print one JSON value."""
    done = run_cli(url, *args, "--json", input=input)
    assert done.returncode == 0, f"authmw {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return json.loads(done.stdout)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoServer:
    """One ``authmw demo`` process on a database in ``directory``."""

    def __init__(self, directory: Path, name: str = "demo.db", framework: str = "fastapi") -> None:
        self.directory = directory
        self.framework = framework
        self.db_path = directory / name
        self.url = f"sqlite:///{self.db_path}"
        self.credentials_file = directory / f"{name}.demo.json"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = directory / f"server-{name}.log"
        self._starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the server printed so far (all its starts)."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def start(self) -> None:
        """Start the server and wait until it answers /health.

        The free port is picked just before the start, so another process can
        take it in between; then the server exits at once and is started again
        on a new port (three tries).
        """
        for _ in range(3):
            self.port = free_port()
            self._starts += 1
            with self._log_path.open("ab") as log:
                log.write(f"--- start {self._starts} on port {self.port}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    authmw_command(
                        self.url, "demo", "--framework", self.framework, "--port", str(self.port)
                    ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    env=ENV,
                )
            if self._wait_healthy():
                return
            if "address already in use" not in self.output().lower():
                break
        self.stop()
        pytest.fail(f"authmw demo did not come up; its output:\n{self.output()}")

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop the server (SIGTERM: uvicorn shuts down cleanly), killing it if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def credentials(self) -> dict[str, Any]:
        """The demo's credentials file: ``{"users": {name: password}, "keys": {label: {...}}}``."""
        data: dict[str, Any] = json.loads(self.credentials_file.read_text())
        return data

    def key(self, label: str) -> str:
        """The value of a seeded key: ``admin``, ``team`` or ``restricted``."""
        value: str = self.credentials()["keys"][label]["key"]
        return value


#: Longer than the default staleness bound (5 s): a liveness deadline, not a timing claim.
REVOCATION_DEADLINE = 30.0


def _demo_keys(server: DemoServer) -> dict[str, str]:
    keys = json.loads(Path(server.credentials_file).read_text())["keys"]
    return {label: entry["key"] for label, entry in keys.items()}


def check_wsgi_demo_contract(server: DemoServer) -> None:
    """Call a WSGI demo served by ``authmw demo`` over HTTP: a few contract routes."""
    keys = _demo_keys(server)
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        health = http.get("/health")
        assert health.json() == {"status": "ok"}
        assert health.headers["server"] == "waitress"  # a real WSGI server, not a dev server
        me = http.get("/me", headers={"Authorization": f"apikey {keys['admin']}"})
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "api_key"
        assert me.json()["subject"] == "admin"
        assert http.get("/reports", headers={"X-API-Key": keys["admin"]}).status_code == 200
        anonymous = http.get("/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="api", apikey realm="api"'
        refused = http.get("/reports", headers={"Authorization": f"Bearer {keys['restricted']}"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_role"
        other_team = http.get("/teams/green/usage", headers={"X-API-Key": keys["team"]})
        assert other_team.status_code == 403
        assert http.get("/teams/blue/usage", headers={"X-API-Key": keys["team"]}).status_code == 200


def check_cli_revocation_reaches(server: DemoServer) -> None:
    """Revoke a key with the CLI (another process); the server refuses it within the bound."""
    created = cli_json(server.url, "keys", "create", "--name", "e2e-revoke", "--owner", "admin")
    headers = {"X-API-Key": created["key"]}
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        assert http.get("/me", headers=headers).status_code == 200
        revoked = run_cli(server.url, "keys", "revoke", created["id"])
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + REVOCATION_DEADLINE
        status = 200
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
            status = http.get("/me", headers=headers).status_code
        assert status == 401


def check_stopping_keeps_the_last_use_of_a_key(directory: Path, framework: str) -> None:
    """Use a key, stop the demo with SIGTERM, and find the use written to the store.

    Long before the usage thread's first batch (every 30 s by default): the use
    is written on the way out, whatever the server does with the signal.
    """
    server = DemoServer(directory, framework=framework)
    server.start()
    try:
        used = server.credentials()["keys"]["admin"]
        response = httpx.get(
            f"{server.base_url}/me", headers={"X-API-Key": used["key"]}, timeout=10.0
        )
        assert response.status_code == 200
    finally:
        server.stop()
    keys = {k["id"]: k for k in cli_json(server.url, "keys", "list")}
    assert keys[used["id"]]["last_used_at"] is not None, server.output()
    assert [k["last_used_at"] for i, k in keys.items() if i != used["id"]] == [None, None]


def check_token_flows_with_real_clients(server: DemoServer) -> None:
    """Get, use, refresh and revoke tokens from the demo with real OAuth2 client libraries.

    Authlib runs the password and refresh grants and client credentials;
    requests-oauthlib runs client credentials and the password grant too. Both talk
    to the server over real HTTP, as any application would.
    """
    from authlib.integrations.requests_client import OAuth2Session as AuthlibSession  # noqa: PLC0415
    from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient  # noqa: PLC0415
    from requests_oauthlib import OAuth2Session  # noqa: PLC0415

    data = server.credentials()
    web, reporting = data["clients"]["web"], data["clients"]["reporting"]
    token_url = f"{server.base_url}/oauth/token"
    password = data["users"]["manager"]

    # Authlib: password grant (first-party app), use, refresh with rotation, replay refused.
    with AuthlibSession(
        web["client_id"], web["client_secret"], token_endpoint_auth_method="client_secret_basic"
    ) as authlib_client:
        token = authlib_client.fetch_token(token_url, username="manager", password=password)
        assert token["token_type"] == "Bearer"
        me = authlib_client.get(f"{server.base_url}/me")
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "user"
        assert me.json()["subject"] == "manager"
        assert authlib_client.get(f"{server.base_url}/reports").status_code == 200
        assert authlib_client.post(f"{server.base_url}/admin/settings").status_code == 403
        first_refresh = token["refresh_token"]
        refreshed = authlib_client.refresh_token(token_url, refresh_token=first_refresh)
        assert refreshed["refresh_token"] != first_refresh
        assert authlib_client.get(f"{server.base_url}/me").status_code == 200
        replay = httpx.post(
            token_url,
            data={"grant_type": "refresh_token", "refresh_token": first_refresh},
            auth=(web["client_id"], web["client_secret"]),
        )
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
        # The replay revoked the family: the rotated access token stops working.
        assert authlib_client.get(f"{server.base_url}/me").status_code == 401

    # Authlib: client credentials, team-bound.
    with AuthlibSession(reporting["client_id"], reporting["client_secret"]) as machine:
        token = machine.fetch_token(token_url, grant_type="client_credentials")
        assert "refresh_token" not in token
        assert machine.get(f"{server.base_url}/teams/blue/usage").status_code == 200
        assert machine.get(f"{server.base_url}/teams/green/usage").status_code == 403
        revoked = httpx.post(
            f"{server.base_url}/oauth/revoke",
            data={"token": token["access_token"]},
            auth=(reporting["client_id"], reporting["client_secret"]),
        )
        assert revoked.status_code == 200
        assert machine.get(f"{server.base_url}/teams/blue/usage").status_code == 401

    # requests-oauthlib refuses plain http by default; the demo listens on loopback only.
    previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        backend = OAuth2Session(client=BackendApplicationClient(client_id=reporting["client_id"]))
        token = backend.fetch_token(
            token_url,
            client_id=reporting["client_id"],
            client_secret=reporting["client_secret"],
        )
        usage = backend.get(f"{server.base_url}/teams/blue/usage")
        assert usage.status_code == 200, usage.text
        legacy = OAuth2Session(client=LegacyApplicationClient(client_id=web["client_id"]))
        token = legacy.fetch_token(
            token_url,
            username="manager",
            password=password,
            client_id=web["client_id"],
            client_secret=web["client_secret"],
        )
        assert legacy.get(f"{server.base_url}/me").json()["subject"] == "manager"
        introspected = httpx.post(
            f"{server.base_url}/oauth/introspect",
            data={"token": token["access_token"]},
            auth=(reporting["client_id"], reporting["client_secret"]),
        )
        assert introspected.json()["active"] is True
        assert introspected.json()["sub"] == "manager"
    finally:
        if previous is None:
            del os.environ["OAUTHLIB_INSECURE_TRANSPORT"]
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


# -- the authorization-code grant, driven over plain HTTP ------------------------------------


@dataclass
class HtmlForm:
    """The first ``<form>`` of a page: where it posts, its hidden fields, all its field names."""

    action: str = ""
    hidden: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    buttons: dict[str, set[str]] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form: HtmlForm | None = None
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and self.form is None:
            self.form = HtmlForm(action=attributes.get("action", ""))
        elif self.form is not None and not self._done and "name" in attributes:
            name = attributes["name"]
            self.form.names.add(name)
            if tag == "input" and attributes.get("type") == "hidden":
                self.form.hidden[name] = attributes.get("value", "")
            elif tag == "button":
                self.form.buttons.setdefault(name, set()).add(attributes.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True


def parse_form(html: str) -> HtmlForm:
    """Return the first form of ``html`` (attribute values unescaped, as a browser reads them)."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    assert parser.form is not None, f"no form on the page:\n{html}"
    return parser.form


def _check_page_headers(response: httpx.Response) -> None:
    """The login and consent pages: HTML, never cached, never framed, a strict CSP."""
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "access-control-allow-origin" not in response.headers


def log_in_and_consent(
    authorization_url: str,
    *,
    username: str,
    password: str,
    app: str,
    scope_texts: Iterable[str] = (),
    decision: str = "allow",
    consent_expected: bool = True,
) -> str:
    """Walk the login and consent pages as a browser would; return the redirect ``Location``.

    A plain HTTP client that keeps cookies: it reads each form's action and CSRF
    token from the HTML, signs in as ``username``, and (if a consent page comes)
    checks it names ``app`` and every text of ``scope_texts``, then submits
    ``decision``. The redirect to the app is returned, never followed.
    """
    with httpx.Client(timeout=10.0, follow_redirects=False) as browser:
        page = browser.get(authorization_url)
        assert page.status_code == 200, page.text
        _check_page_headers(page)
        assert app in page.text
        login = parse_form(page.text)
        assert {"username", "password", "csrf_token"} <= login.names
        for cookie in page.headers.get_list("set-cookie"):
            assert "HttpOnly" in cookie
            assert "SameSite=Lax" in cookie
        answer = browser.post(
            urljoin(authorization_url, login.action),
            data={**login.hidden, "username": username, "password": password},
        )
        if consent_expected:
            assert answer.status_code == 200, answer.text
            _check_page_headers(answer)
            assert app in answer.text
            for text in scope_texts:
                assert text in answer.text
            consent = parse_form(answer.text)
            assert consent.buttons.get("decision") == {"allow", "deny"}
            answer = browser.post(
                urljoin(authorization_url, consent.action),
                data={**consent.hidden, "decision": decision},
            )
        assert answer.status_code == 302, answer.text
        assert answer.headers["cache-control"] == "no-store"
        location: str = answer.headers["location"]
        return location


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@contextmanager
def _insecure_transport() -> Iterator[None]:
    """Let oauthlib use plain http: the demo listens on loopback only."""
    previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["OAUTHLIB_INSECURE_TRANSPORT"]
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


def _check_delegated(session: Any, base: str, client_id: str) -> None:
    """A delegated token of manager through the partner app: its scopes, manager's roles."""
    me = session.get(f"{base}/me")
    assert me.status_code == 200, me.text
    principal = me.json()
    assert principal["kind"] == "delegated"
    assert principal["subject"] == "manager"
    assert principal["client_id"] == client_id
    assert principal["scopes"] == ["appointments:read", "reports:read"]
    assert session.get(f"{base}/appointments").status_code == 200
    assert session.get(f"{base}/reports").status_code == 200  # manager's role
    assert session.post(f"{base}/admin/settings").status_code == 403


def _wait_refused(url: str, access_token: str) -> int:
    """Call ``url`` with the token until it is refused or the deadline passes; the last status."""
    headers = {"Authorization": f"Bearer {access_token}"}
    deadline = time.monotonic() + REVOCATION_DEADLINE
    status = httpx.get(url, headers=headers, timeout=10.0).status_code
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
        status = httpx.get(url, headers=headers, timeout=10.0).status_code
    return status


def check_authorization_code_with_real_clients(server: DemoServer) -> None:
    """Run the authorization-code grant with PKCE through Authlib and requests-oauthlib.

    Each library builds the authorization URL (S256 challenge), the login and
    consent pages are driven over plain HTTP, the redirect is handed back to the
    library's ``fetch_token``, and the delegated token is used and refreshed.
    Between the two, ``authmw consents revoke`` (another process) withdraws the
    consent: the app's refresh token stops at once, its access token within the
    staleness bound, and the next login asks for consent again.
    """
    from authlib.common.security import generate_token  # noqa: PLC0415
    from authlib.integrations.requests_client import OAuth2Session as AuthlibSession  # noqa: PLC0415
    from requests_oauthlib import OAuth2Session  # noqa: PLC0415

    from authmw.demo import SCOPE_DESCRIPTIONS  # noqa: PLC0415

    data = server.credentials()
    partner, web = data["clients"]["partner"], data["clients"]["web"]
    client_id, secret = partner["client_id"], partner["client_secret"]
    password = data["users"]["manager"]
    base = server.base_url
    authorize_url, token_url = f"{base}/oauth/authorize", f"{base}/oauth/token"
    # Registered as http://127.0.0.1/callback: any port matches (RFC 8252 section 7.3).
    # Nothing listens there: the redirect is captured, never followed.
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    scopes = ["appointments:read", "reports:read"]
    texts = [SCOPE_DESCRIPTIONS[s] for s in scopes]

    # Authlib: S256 challenge from a verifier of our own, confidential client (HTTP Basic).
    with AuthlibSession(
        client_id,
        secret,
        scope=" ".join(scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as authlib_client:
        verifier = generate_token(48)
        url, state = authlib_client.create_authorization_url(authorize_url, code_verifier=verifier)
        sent = _query(url)
        assert sent["code_challenge_method"] == "S256"
        assert sent["code_challenge"] != verifier
        location = log_in_and_consent(
            url, username="manager", password=password, app="Partner Scheduling", scope_texts=texts
        )
        assert location.startswith(redirect_uri + "?"), location
        returned = _query(location)
        assert returned["state"] == state
        token = authlib_client.fetch_token(
            token_url, authorization_response=location, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer"
        assert sorted(token["scope"].split()) == scopes
        _check_delegated(authlib_client, base, client_id)
        refreshed = authlib_client.refresh_token(token_url)
        assert refreshed["refresh_token"] != token["refresh_token"]
        _check_delegated(authlib_client, base, client_id)
        # A code is good once.
        replay = httpx.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": returned["code"],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
        delegated = refreshed

    # The consent is remembered: manager's own token lists it.
    user_token = httpx.post(
        token_url,
        data={"grant_type": "password", "username": "manager", "password": password},
        auth=(web["client_id"], web["client_secret"]),
    ).json()["access_token"]
    consents = httpx.get(
        f"{base}/oauth/consents", headers={"Authorization": f"Bearer {user_token}"}
    ).json()["consents"]
    [consent] = [c for c in consents if c["client_id"] == client_id]
    assert consent["app"] == "Partner Scheduling"
    assert consent["scopes"] == scopes

    # The CLI withdraws it: the app's tokens for manager end.
    listed = cli_json(server.url, "consents", "list", "--user", "manager")
    assert [c["client_id"] for c in listed] == [client_id]
    revoked = run_cli(server.url, "consents", "revoke", "manager", client_id)
    assert revoked.returncode == 0, revoked.stderr
    stale = httpx.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": delegated["refresh_token"]},
        auth=(client_id, secret),
    )
    assert stale.status_code == 400
    assert stale.json()["error"] == "invalid_grant"
    assert _wait_refused(f"{base}/me", delegated["access_token"]) == 401

    # requests-oauthlib: its own PKCE verifier; consent is asked for again.
    with (
        _insecure_transport(),
        OAuth2Session(client_id, redirect_uri=redirect_uri, scope=scopes, pkce="S256") as oauth,
    ):
        url, state = oauth.authorization_url(authorize_url)
        assert _query(url)["code_challenge_method"] == "S256"
        location = log_in_and_consent(
            url, username="manager", password=password, app="Partner Scheduling", scope_texts=texts
        )
        assert _query(location)["state"] == state
        token = oauth.fetch_token(token_url, authorization_response=location, client_secret=secret)
        assert sorted(token["scope"]) == scopes
        _check_delegated(oauth, base, client_id)
        refreshed = oauth.refresh_token(token_url, auth=(client_id, secret))
        assert refreshed["refresh_token"] != token["refresh_token"]
        _check_delegated(oauth, base, client_id)


# -- several server processes on one PostgreSQL and Redis ------------------------------------

#: The demo app's factory, as uvicorn imports it.
FASTAPI_FACTORY = "authmw_examples.fastapi_app.app:create_app"


def run_cli_with(
    env: dict[str, str], url: str, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`run_cli` with ``env`` (say ``AUTHMW_SECRET_KEY``, ``AUTHMW_REDIS_URL``) added."""
    return subprocess.run(
        authmw_command(url, *args),
        input=input,
        capture_output=True,
        text=True,
        env={**ENV, **env},
        timeout=CLI_TIMEOUT,
        check=False,
    )


def cli_json_with(env: dict[str, str], url: str, *args: str, input: str | None = None) -> Any:
    """:func:`cli_json` with ``env`` added; it must succeed and print one JSON value."""
    done = run_cli_with(env, url, *args, "--json", input=input)
    assert done.returncode == 0, f"authmw {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return json.loads(done.stdout)


class UvicornServer(DemoServer):
    """One uvicorn process serving the FastAPI demo's ``create_app`` factory.

    Configured only by ``env`` (``AUTHMW_DATABASE_URL`` and the rest), as a
    deployment configures each of its instances; ``url`` is that database, for
    the CLI. Started, checked and stopped like :class:`DemoServer`.
    """

    def __init__(self, directory: Path, name: str, url: str, env: dict[str, str]) -> None:
        super().__init__(directory, name)
        self.url = url
        self.env = {**ENV, **env}

    def start(self) -> None:
        """Start uvicorn and wait until it answers /health (three tries, as DemoServer)."""
        for _ in range(3):
            self.port = free_port()
            self._starts += 1
            with self._log_path.open("ab") as log:
                log.write(f"--- start {self._starts} on port {self.port}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        FASTAPI_FACTORY,
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                        "--no-access-log",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    env=self.env,
                )
            if self._wait_healthy():
                return
            if "address already in use" not in self.output().lower():
                break
        self.stop()
        pytest.fail(f"uvicorn did not come up; its output:\n{self.output()}")
