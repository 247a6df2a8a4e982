"""``authmw demo``: an example app served on a seeded database.

On first run the demo creates three users (:data:`USERS`) with random passwords,
three API keys (:data:`KEYS`) and four OAuth2 clients (:data:`CLIENTS`): a
first-party app that may log users in with the password grant, a machine
client of team blue for the client-credentials grant, a third-party app for the
authorization-code grant with PKCE, and a public app for the API docs. A key is
shown once by design, so the demo
keeps what it created in a file beside the database (``authmw.db.demo.json``,
readable by its owner only; ``authmw-demo.json`` in the working directory for a
database that is not a local file) and prints a banner with ready-to-run
``curl`` lines at every start. That file holds live credentials: it belongs to
a throwaway demo database, never to a real one.

Seeding is idempotent item by item: a user or key that exists is left alone, so
restarting never resets what was changed through the CLI meanwhile, and a key
revoked meanwhile is reported as such instead of being printed. A database that
has users but no demo credentials file is refused: it is somebody's real one.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import os
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from authmw.authenticator import Authenticator
from authmw.config import sqlite_file
from authmw.store import Conflict

__all__ = [
    "BANNER_REDIRECT_URI",
    "CLIENTS",
    "DOCS_APP_NAME",
    "KEYS",
    "SCOPE_DESCRIPTIONS",
    "SERVERS",
    "USERS",
    "AppFactory",
    "Demo",
    "DemoClient",
    "DemoKey",
    "DemoUser",
    "NotADemoDatabase",
    "banner",
    "base_url",
    "credentials_path",
    "load_app",
    "pkce_pair",
    "prepare",
    "serve",
]

#: ``create_app(authenticator)`` of an example app.
AppFactory = Callable[[Authenticator], Any]


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A user the demo creates."""

    name: str
    roles: tuple[str, ...]
    teams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DemoKey:
    """An API key the demo creates; ``label`` is how the banner refers to it."""

    label: str
    name: str
    summary: str
    owner: str | None = None
    team: str | None = None
    scopes: tuple[str, ...] | None = None

    def create_command(self, url: str) -> str:
        """Return the CLI line that makes an equivalent key, for when this one is gone."""
        holder = f"--owner {self.owner}" if self.owner is not None else f"--team {self.team}"
        scopes = "".join(f" --scope {s}" for s in self.scopes or ())
        return f"authmw --db {url} keys create --name '{self.label}' {holder}{scopes}"


USERS = (
    DemoUser("admin", ("admin",), ("blue", "green")),
    DemoUser("manager", ("manager",), ("blue",)),
    DemoUser("employee", ("employee",), ("green",)),
)
KEYS = (
    DemoKey("admin", "demo admin key", "personal key of admin: global", owner="admin"),
    DemoKey("team", "demo team blue key", "service account of team blue", team="blue"),
    DemoKey(
        "restricted",
        "demo restricted key",
        "owner admin, restricted to appointments:read",
        owner="admin",
        scopes=("appointments:read",),
    ),
)


#: What each demo scope lets an app do, as the consent page says it. The three
#: example apps pass this one mapping to ``AuthEndpoints``, so their pages agree.
SCOPE_DESCRIPTIONS = {
    "appointments:read": "See your appointments",
    "appointments:write": "Book, move and cancel your appointments",
    "reports:read": "Read the reports you can see",
    "admin": "Change the application settings",
}


@dataclass(frozen=True, slots=True)
class DemoClient:
    """An OAuth2 client the demo registers; ``label`` is how the banner refers to it."""

    label: str
    name: str
    summary: str
    #: ``"app"``: acts for users (authorization code); ``"client"``: machine-to-machine.
    kind: str
    team: str | None = None
    scopes: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    #: An app the deployment ships itself: it may also use the password grant.
    first_party: bool = False
    #: An app with no secret (a browser or native app): PKCE only.
    public: bool = False


#: The public app the FastAPI demo's Swagger UI logs in with.
DOCS_APP_NAME = "demo API docs"

CLIENTS = (
    DemoClient(
        "web",
        "demo web app",
        "first-party app: users log in (password grant)",
        "app",
        redirect_uris=("http://127.0.0.1:8000/callback",),
        first_party=True,
    ),
    DemoClient(
        "reporting",
        "demo reporting job",
        "machine client of team blue (client credentials)",
        "client",
        team="blue",
        scopes=("reports:read", "appointments:read"),
    ),
    # A loopback redirect URI registered without a port matches any port (RFC 8252
    # section 7.3), so a test or a script can listen wherever it likes.
    DemoClient(
        "partner",
        "Partner Scheduling",
        "third-party app: authorization code + PKCE, users consent",
        "app",
        scopes=("appointments:read", "reports:read"),
        redirect_uris=("http://127.0.0.1/callback",),
    ),
    DemoClient(
        "docs",
        DOCS_APP_NAME,
        "public app for the interactive API docs: PKCE only",
        "app",
        scopes=("appointments:read", "appointments:write", "reports:read", "admin"),
        redirect_uris=("http://127.0.0.1/docs/oauth2-redirect",),
        public=True,
    ),
)


@dataclass
class Demo:
    """What the demo created and can still show: passwords, keys and client secrets."""

    url: str
    path: Path | None
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    keys: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    clients: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)


def credentials_path(url: str) -> Path | None:
    """Where the demo keeps its credentials for database ``url`` (``None``: in memory only)."""
    if sa.make_url(url).get_backend_name() != "sqlite":
        return Path("authmw-demo.json")
    path = sqlite_file(url)
    return None if path is None else path.with_name(path.name + ".demo.json")


def _load(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}  # unreadable: seed what is missing, report the rest as unavailable
    return data if isinstance(data, dict) else {}


def _save(path: Path, demo: Demo) -> None:
    # Written whole to a temporary file and renamed, so a crash never leaves half
    # a file; created owner-only because it holds live keys and passwords.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}")  # same ending, so .gitignore covers it too
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {"users": demo.passwords, "keys": demo.keys, "clients": demo.clients}, fh, indent=2
        )
    os.chmod(tmp, 0o600)  # a temp file left by a crash may have looser bits
    os.replace(tmp, path)


class NotADemoDatabase(ValueError):
    """The database has users but no demo credentials file: it is not the demo's to seed."""


def prepare(auth: Authenticator, url: str) -> Demo:
    """Create the schema, and the demo users and keys that do not exist yet.

    Raises :class:`NotADemoDatabase` for a database that already has users and
    no demo credentials file: seeding it would plant a global admin key, whose
    value sits in a plain file, in what may well be a real database.
    """
    auth.store.create_schema()
    path = credentials_path(url)
    if (path is None or not path.exists()) and auth.store.list_users():
        raise NotADemoDatabase(
            f"{_safe_url(url)} already has users and no demo credentials file ({path}); "
            "the demo only seeds a new database: try --db sqlite:///authmw-demo.db"
        )
    saved = _load(path)
    demo = Demo(
        url,
        path,
        dict(saved.get("users", {})),
        dict(saved.get("keys", {})),
        dict(saved.get("clients", {})),
    )
    changed = False
    for user in USERS:
        if auth.store.get_user(user.name) is None:
            password = secrets.token_urlsafe(18)
            auth.users.create(user.name, password=password, roles=user.roles, teams=user.teams)
            demo.passwords[user.name] = password
            changed = True
    for spec in KEYS:
        entry = demo.keys.get(spec.label)
        if entry is not None and auth.store.get_key(entry.get("id", "")) is not None:
            continue
        try:
            issued = auth.keys.create(
                name=spec.name, owner=spec.owner, team=spec.team, scopes=spec.scopes
            )
        except Conflict:
            # The key exists but its value was lost with the credentials file; it
            # cannot be shown again, and the banner says so.
            demo.keys.pop(spec.label, None)
            continue
        demo.keys[spec.label] = {"id": issued.record.id, "key": issued.key}
        changed = True
    for client in CLIENTS:
        entry = demo.clients.get(client.label)
        if entry is not None and auth.store.get_client(entry.get("client_id", "")) is not None:
            continue
        if client.kind == "app":
            registered = auth.clients.create_app(
                client.name,
                redirect_uris=client.redirect_uris,
                scopes=client.scopes,
                public=client.public,
                first_party=client.first_party,
            )
        else:
            registered = auth.clients.create_client(
                client.name, team=client.team or "", scopes=client.scopes
            )
        demo.clients[client.label] = {
            "client_id": registered.client.id,
            "client_secret": registered.secret or "",
        }
        changed = True
    if changed and path is not None:
        _save(path, demo)
    return demo


def _unusable(auth: Authenticator, key_id: str, now: datetime) -> str | None:
    """Why a seeded key no longer works, or ``None`` if it does."""
    match = auth.store.find_key(key_id)
    if match is None:
        return "deleted"
    status = match.key.status(now)
    if status in ("revoked", "expired"):
        return status
    if auth.policy.key_principal(match.key, match.owner) is None:
        return "no longer valid: its owner was disabled or lost the admin role"
    return None


def base_url(host: str, port: int) -> str:
    """Return the URL a local client uses to reach a server listening on ``host:port``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def banner(auth: Authenticator, demo: Demo, *, framework: str, host: str, port: int) -> str:
    """Return the text printed at every start: users, keys and ``curl`` lines to try."""
    base = base_url(host, port)
    db = _safe_url(demo.url)
    where = f"kept in {demo.path}" if demo.path is not None else "in-memory database: not kept"
    title = f"authmw demo ({framework}) on {base}"
    if framework == "fastapi":  # only FastAPI serves interactive API docs
        title += f"  -  API docs: {base}/docs"
    lines = [title, f"Database: {db}"]
    people = []
    for user in auth.users.list():
        state = " [disabled]" if user.disabled else ""
        teams = ", ".join(sorted(user.teams)) or "none"
        people.append(f"{user.username} ({', '.join(sorted(user.roles))}; teams {teams}){state}")
    lines.append("Users: " + "; ".join(people))
    lines.append(f"  passwords: {where}")
    lines.append(f"API keys ({where}):")
    now = datetime.now(UTC)
    usable: dict[str, str] = {}
    width = max(len(spec.label) for spec in KEYS)
    for spec in KEYS:
        entry = demo.keys.get(spec.label)
        if entry is None:
            why: str | None = "not available: its value was not kept"
        else:
            why = _unusable(auth, entry["id"], now)
        if why is None and entry is not None:
            usable[spec.label] = entry["key"]
            lines.append(f"  {spec.label:<{width}}  {entry['key']}  {spec.summary}")
        else:
            lines.append(f"  {spec.label:<{width}}  ({why}; make a new one with:")
            lines.append(f"  {'':<{width}}   {spec.create_command(db)})")
    lines += ["", "Try:"]
    tries: list[tuple[str | None, str, str]] = [
        (None, "", "/health  # 200: public"),
        ("admin", "Authorization: apikey", "/me  # 200: the admin key"),
        ("team", "Authorization: Bearer", "/me  # 200: the team key"),
        ("restricted", "X-API-Key:", "/me  # 200: the restricted key"),
        ("admin", "X-API-Key:", "/reports  # 200: role manager; a global key passes"),
        ("team", "X-API-Key:", "/teams/blue/usage  # 200: its own team"),
        (None, "", "/me  # 401: no credential"),
        ("restricted", "X-API-Key:", "/reports  # 403: a restricted key passes no role check"),
        ("team", "X-API-Key:", "/teams/green/usage  # 403: not its team"),
    ]
    for label, header, rest in tries:
        if label is None:
            lines.append(f"  curl -i {base}{rest}")
        elif label in usable:
            lines.append(f"  curl -i -H '{header} {usable[label]}' {base}{rest}")
    lines += _token_lines(auth, demo, base, where)
    return "\n".join(lines)


def _token_lines(auth: Authenticator, demo: Demo, base: str, where: str) -> list[str]:
    """Return the banner's OAuth2 part: the demo clients and how to get a token with each."""
    lines = ["", f"OAuth2 clients ({where}):"]
    usable: dict[str, dict[str, str]] = {}
    for spec in CLIENTS:
        entry = demo.clients.get(spec.label)
        record = auth.store.get_client(entry["client_id"]) if entry is not None else None
        if entry is None or record is None or not (spec.public or entry.get("client_secret")):
            lines.append(f"  {spec.label:<9}  (not available: its secret was not kept)")
        elif record.disabled:
            lines.append(f"  {spec.label:<9}  (disabled)")
        else:
            usable[spec.label] = entry
            secret = "no secret" if spec.public else f"secret {entry['client_secret']}"
            lines.append(f"  {spec.label:<9}  id {entry['client_id']}  {secret}  {spec.summary}")
            if spec.kind == "app" and not spec.first_party:
                uris = ", ".join(record.redirect_uris)
                scopes = " ".join(sorted(record.scopes)) or "none"
                lines.append(f"  {'':<9}  redirect URIs: {uris}; scopes: {scopes}")
    token = f"{base}/oauth/token"
    tries = []
    web, reporting = usable.get("web"), usable.get("reporting")
    if web is not None and "manager" in demo.passwords and demo.path is not None:
        # Passwords stay out of the banner (it ends up in terminals and logs); the
        # line reads manager's from the credentials file instead.
        # The file's absolute path: the line works from any directory.
        kept = str(demo.path.resolve())
        read = f"import json;print(json.load(open({kept!r}))['users']['manager'])"
        tries.append(
            f"  curl -i -u {web['client_id']}:{web['client_secret']} -d grant_type=password"
            f' -d username=manager --data-urlencode "password=$(python3 -c "{read}")" {token}'
            "  # 200: tokens for manager"
        )
    if reporting is not None:
        tries.append(
            f"  curl -i -u {reporting['client_id']}:{reporting['client_secret']}"
            f" -d grant_type=client_credentials {token}  # 200: a token of team blue's client"
        )
    if tries:
        lines += ["", "Get a token, then send it as 'Authorization: Bearer <access_token>':"]
        lines += tries
    partner = usable.get("partner")
    if partner is not None:
        lines += _authorization_code_lines(partner, base, token)
    return lines


#: Where the banner's authorization-code example sends the browser back: the
#: partner app registered ``http://127.0.0.1/callback``, so any port matches.
#: Nothing listens there; the browser shows an error page with the code in its
#: address bar, which is all a person trying the flow by hand needs.
BANNER_REDIRECT_URI = "http://127.0.0.1:8765/callback"


def pkce_pair() -> tuple[str, str]:
    """Return a fresh PKCE ``(code_verifier, code_challenge)`` for S256 (RFC 7636 section 4)."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorization_code_lines(partner: dict[str, str], base: str, token: str) -> list[str]:
    """Return the banner lines that walk through the authorization-code grant with PKCE.

    A new verifier at every start: it is no secret worth keeping, and a code is
    bound to the challenge of the request that asked for it.
    """
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": partner["client_id"],
            "redirect_uri": BANNER_REDIRECT_URI,
            "scope": "appointments:read reports:read",
            "state": "demo",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return [
        "",
        "Authorization code with PKCE (the partner app): open this in a browser, sign in"
        f" as manager, allow; then take 'code' from the address bar (code_verifier {verifier}):",
        f"  {base}/oauth/authorize?{query}",
        f"  curl -i -u {partner['client_id']}:{partner['client_secret']}"
        f" -d grant_type=authorization_code -d code=CODE -d redirect_uri={BANNER_REDIRECT_URI}"
        f" -d code_verifier={verifier} {token}  # 200: delegated tokens for manager",
    ]


#: The server each demo runs on: uvicorn for the ASGI app, waitress for the WSGI ones.
SERVERS = {"fastapi": "uvicorn", "flask": "waitress", "django": "waitress"}


def load_app(framework: str) -> AppFactory:
    """Import ``create_app`` of the example app of ``framework`` from ``authmw_examples``.

    Raises ``ModuleNotFoundError`` when the framework's extra is not installed;
    the server is imported here too, so that shows before anything is seeded.
    """
    importlib.import_module(SERVERS[framework])
    # The wheel carries the repository's examples/ directory as authmw_examples.
    module = importlib.import_module(f"authmw_examples.{framework}_app.app")
    factory: AppFactory = module.create_app
    return factory


def serve(app: Any, *, framework: str, host: str, port: int) -> None:
    """Serve the demo app of ``framework`` on a production-grade server until interrupted."""
    if SERVERS[framework] == "uvicorn":
        import uvicorn  # noqa: PLC0415 - an optional dependency (the fastapi extra)

        # Not uvicorn's default, which believes X-Forwarded-For from 127.0.0.1: the
        # demo has no proxy in front, and any local process could otherwise choose
        # the address its failed logins are counted under.
        uvicorn.run(app, host=host, port=port, proxy_headers=False)
    else:
        import waitress  # noqa: PLC0415 - an optional dependency (flask and django extras)

        # waitress leaves SIGTERM to its default action, which ends the process on
        # the spot. Leave through Python instead, as on Ctrl-C, so the command
        # closes the authenticator and writes the keys' last use.
        signal.signal(signal.SIGTERM, _stop)
        waitress.serve(app, host=host, port=port)


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
