"""The ``authmw`` command, driven in-process through click's CliRunner.

Framework-free: the ``demo`` command is only checked for its refusals here; the
demo itself runs in tests/e2e.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from authmw import Authenticator, InvalidToken
from authmw.cli import CommandState, main, parse_duration
from authmw.credentials import Credential

#: Cleared for every invocation, so the developer's own settings never leak in.
CLEAN_ENV: dict[str, str | None] = {
    "AUTHMW_DATABASE_URL": None,
    "AUTHMW_SECRET_KEY": None,
    "AUTHMW_POLICY": None,
}
PASSWORD = "correct horse battery staple"
KEY_FIELDS = {
    "id",
    "name",
    "owner",
    "team",
    "scopes",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "replaced_by",
    "status",
}
USER_FIELDS = {"username", "roles", "teams", "disabled", "created_at"}


class Cli:
    """Run ``authmw --db URL ...``; every output is kept so tests can search it for secrets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()
        self.outputs: list[str] = []

    def run(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        result = self.runner.invoke(
            main, ["--db", self.url, *args], input=input, env={**CLEAN_ENV, **env}
        )
        # An exception other than SystemExit is a traceback the user would have seen.
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        self.outputs.append(result.output)
        return result

    def ok(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        result = self.run(*args, input=input, **env)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        result = self.ok(*args, "--json", input=input)
        return json.loads(result.stdout)

    def fails(
        self, *args: str, input: str | None = None, code: int | None = None, **env: str | None
    ) -> str:
        """Run a command that must fail; return its one-line ``Error: ...`` message."""
        result = self.run(*args, input=input, **env)
        assert result.exit_code != 0, result.output
        if code is not None:
            assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, result.output
        return errors[0]

    def all_output(self) -> str:
        return "\n".join(self.outputs)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'authmw.db'}"


@pytest.fixture
def cli(db_url: str) -> Cli:
    """A CLI on an initialised database."""
    runner = Cli(db_url)
    runner.ok("init")
    return runner


@pytest.fixture
def admin(cli: Cli) -> str:
    cli.ok("users", "create", "admin", "--role", "admin", "--password-stdin", input=PASSWORD)
    return "admin"


@pytest.fixture
def open_auth(db_url: str) -> Iterator[Authenticator]:
    """The database as the library sees it, to check what the CLI did."""
    auth = Authenticator.from_url(db_url)
    yield auth
    auth.close()


def is_aware_iso(value: object) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None


# -- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("1h", timedelta(hours=1)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("0h5m", timedelta(minutes=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0s",
        "0h0m",
        "30",
        "-1d",
        "1.5h",
        "1 h",
        " 1h",
        "1h ",
        "1x",
        "h",
        "1H",
        "1h1h",
        "30m1h",
        "1d-2h",
        "9999999999d",
        "36526d",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|too long") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


# -- the group ---------------------------------------------------------------------------


def test_help_touches_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--help"], env=CLEAN_ENV)
    assert result.exit_code == 0
    for command in ("init", "users", "keys", "demo"):
        assert command in result.output
    assert "AUTHMW_DATABASE_URL" in result.output
    assert list(tmp_path.iterdir()) == []


def test_database_url_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    result = CliRunner().invoke(main, ["init"], env={**CLEAN_ENV, "AUTHMW_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env.db").exists()


def test_default_database_is_authmw_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init"], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "authmw.db").exists()
    assert (tmp_path / "authmw.db.secret").exists()


def test_commands_refuse_a_database_that_does_not_exist(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'missing.db'}")
    message = cli.fails("users", "list")
    assert "authmw init" in message
    assert not (tmp_path / "missing.db").exists()  # no empty file left behind


def test_commands_refuse_a_database_without_tables(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    cli = Cli(f"sqlite:///{path}")
    assert "run `authmw init` first" in cli.fails("users", "list")
    assert "run `authmw init` first" in cli.fails(
        "users", "create", "x", "--role", "admin", "--password-stdin", input=PASSWORD
    )
    assert "run `authmw init` first" in cli.fails("keys", "list")


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "not a valid database URL"), ("nosuchdb://x/y", "unknown database type")],
)
def test_bad_database_url(url: str, message: str) -> None:
    assert message in Cli(url).fails("users", "list", code=2)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("AUTHMW_POLICY", "authmw_no_such_module:POLICY", "no module named"),
        ("AUTHMW_POLICY", "authmw.policy:NO_SUCH_POLICY", "has no 'NO_SUCH_POLICY'"),
        ("AUTHMW_POLICY", "authmw.config:DEFAULT_CACHE_TTL", "not an authmw Policy"),
        ("AUTHMW_CACHE_TTL", "abc", "a number of seconds"),
    ],
)
def test_bad_setting_in_the_environment_is_one_error_line_naming_it(
    cli: Cli, setting: str, value: str, message: str
) -> None:
    if setting == "AUTHMW_POLICY":
        error = cli.fails("users", "list", AUTHMW_POLICY=value)
    else:
        error = cli.fails("users", "list", AUTHMW_CACHE_TTL=value)
    assert f"{setting}" in error
    assert repr(value) in error
    assert message in error
    assert "driver" not in error


def test_server_database_error_hides_the_password() -> None:
    # Nothing listens on port 1, so connecting fails (or, without the driver, loading
    # it does); either way the URL's password must not show.
    cli = Cli("postgresql+psycopg://user:hunter2-secret@127.0.0.1:1/db")
    cli.fails("users", "list")
    assert "hunter2-secret" not in cli.all_output()


# -- init --------------------------------------------------------------------------------


def test_init_creates_schema_and_secret(tmp_path: Path, db_url: str) -> None:
    cli = Cli(db_url)
    first = cli.ok("init")
    secret = tmp_path / "authmw.db.secret"
    assert "Database ready" in first.output
    assert str(secret) in first.output
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # The database holds password and key hashes: owner-only too, whatever the umask.
    assert stat.S_IMODE((tmp_path / "authmw.db").stat().st_mode) == 0o600
    content = secret.read_text()
    assert content.strip() not in cli.all_output()

    again = cli.json("init")
    assert again == {
        "database": db_url,
        "secret_source": "file",
        "secret_file": str(secret),
        "secret_created": False,
    }
    assert secret.read_text() == content  # kept, never replaced
    assert cli.json("users", "list") == []


def test_init_json_reports_a_new_secret(db_url: str) -> None:
    out = Cli(db_url).json("init")
    assert out["secret_created"] is True
    assert out["secret_source"] == "file"


def test_init_with_secret_from_environment(tmp_path: Path, db_url: str) -> None:
    cli = Cli(db_url)
    keys = f"{'2' * 32}-from-env,{'1' * 32}-from-env"
    result = cli.ok("init", "--json", AUTHMW_SECRET_KEY=keys)
    out = json.loads(result.stdout)
    assert out["secret_source"] == "environment"
    assert out["secret_file"] is None
    assert not (tmp_path / "authmw.db.secret").exists()
    assert "from-env" not in result.output


@pytest.mark.parametrize("command", [("init",), ("users", "list")])
def test_a_short_secret_key_from_the_environment_is_one_error_line(
    cli: Cli, command: tuple[str, ...]
) -> None:
    # Refused at start-up, not at the first login with a 503.
    error = cli.fails(*command, AUTHMW_SECRET_KEY=f"{'k' * 32},too-short-old-key")
    assert error == "Error: each signing key needs at least 32 characters"
    assert "too-short" not in cli.all_output()


def test_a_short_key_in_the_secret_file_is_one_error_line(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "authmw.db.secret").write_text("hand-edited\n")
    assert "at least 32 characters" in cli.fails("users", "list")


def test_init_on_a_database_that_is_not_a_file_asks_for_the_secret() -> None:
    cli = Cli("sqlite://")
    result = cli.ok("init")
    assert "AUTHMW_SECRET_KEY" in result.stderr
    assert json.loads(cli.ok("init", "--json").stdout)["secret_source"] == "none"


# -- users -------------------------------------------------------------------------------


def test_users_create(cli: Cli, open_auth: Authenticator) -> None:
    human = cli.ok(
        "users",
        "create",
        "alice",
        "--role",
        "manager",
        "--team",
        "blue",
        "--team",
        "green",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert "alice" in human.output
    out = cli.json(
        "users", "create", "bob", "--role", "employee", "--password-stdin", input=PASSWORD
    )
    assert set(out) == USER_FIELDS
    assert out["username"] == "bob"
    assert out["roles"] == ["employee"]
    assert out["teams"] == []
    assert out["disabled"] is False
    assert is_aware_iso(out["created_at"])

    alice = open_auth.users.get("alice")
    assert alice.roles == {"manager"}
    assert alice.teams == {"blue", "green"}
    assert open_auth.passwords.verify(PASSWORD, alice.password_hash)[0]
    assert alice.password_hash is not None
    assert PASSWORD not in cli.all_output()
    assert alice.password_hash not in cli.all_output()


@pytest.mark.parametrize(
    ("stdin", "password"),
    [
        ("spaces kept at the end  \n", "spaces kept at the end  "),
        ("windows line end\r\n", "windows line end"),
        ("no newline at all", "no newline at all"),
        ("only the first line\nsecond line\n", "only the first line"),
    ],
)
def test_password_stdin_reads_one_line(
    cli: Cli, open_auth: Authenticator, stdin: str, password: str
) -> None:
    cli.ok("users", "create", "carol", "--role", "employee", "--password-stdin", input=stdin)
    stored = open_auth.users.get("carol").password_hash
    assert open_auth.passwords.verify(password, stored)[0]


def test_password_stdin_is_required(cli: Cli, open_auth: Authenticator) -> None:
    message = cli.fails("users", "create", "dave", "--role", "employee", input=PASSWORD, code=2)
    assert "--password-stdin" in message
    assert open_auth.store.get_user("dave") is None


def test_there_is_no_password_option(cli: Cli) -> None:
    result = cli.run(
        "users", "create", "dave", "--role", "employee", "--password", PASSWORD, input=PASSWORD
    )
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_empty_stdin_is_refused(cli: Cli) -> None:
    message = cli.fails(
        "users", "create", "dave", "--role", "employee", "--password-stdin", input=""
    )
    assert "no password" in message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--role", "boss"], "unknown role(s): boss (known roles: admin, employee, manager)"),
        (["--role", "admin", "--team", "no spaces"], "team name"),
        ([], "Missing option '--role'"),
    ],
)
def test_users_create_bad_input(cli: Cli, args: list[str], expected: str) -> None:
    message = cli.fails("users", "create", "erin", *args, "--password-stdin", input=PASSWORD)
    assert expected in message


def test_users_create_bad_name(cli: Cli) -> None:
    message = cli.fails(
        "users", "create", "not a name", "--role", "admin", "--password-stdin", input=PASSWORD
    )
    assert "username" in message


def test_users_create_weak_password(cli: Cli, open_auth: Authenticator) -> None:
    message = cli.fails(
        "users", "create", "frank", "--role", "admin", "--password-stdin", input="xQ7!zk\n"
    )
    assert "at least 8 characters" in message
    assert "xQ7!zk" not in cli.all_output()
    assert open_auth.store.get_user("frank") is None


def test_users_create_duplicate(cli: Cli, admin: str) -> None:
    message = cli.fails(
        "users", "create", admin, "--role", "admin", "--password-stdin", input=PASSWORD
    )
    assert "already exists" in message


def test_users_set_password(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    before = open_auth.users.get(admin)
    new = "a brand new passphrase"
    out = cli.json("users", "set-password", admin, "--password-stdin", input=new + "\n")
    assert out["username"] == admin
    after = open_auth.users.get(admin)
    assert open_auth.passwords.verify(new, after.password_hash)[0]
    assert not open_auth.passwords.verify(PASSWORD, after.password_hash)[0]
    assert after.credential_epoch > before.credential_epoch
    assert new not in cli.all_output()
    assert (
        "Changed the password"
        in cli.ok("users", "set-password", admin, "--password-stdin", input=PASSWORD).output
    )


def test_users_set_password_bad_input(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    before = open_auth.users.get(admin).password_hash
    assert "--password-stdin" in cli.fails("users", "set-password", admin, input=PASSWORD, code=2)
    assert "at least 8" in cli.fails(
        "users", "set-password", admin, "--password-stdin", input="weak"
    )
    assert "no user named 'ghost'" in cli.fails(
        "users", "set-password", "ghost", "--password-stdin", input=PASSWORD
    )
    assert open_auth.users.get(admin).password_hash == before


def test_users_set_roles(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    out = cli.json("users", "set-roles", admin, "--role", "manager", "--role", "employee")
    assert out["roles"] == ["employee", "manager"]
    assert open_auth.users.get(admin).roles == {"manager", "employee"}
    assert "manager" in cli.ok("users", "set-roles", admin, "--role", "manager").output
    assert "known roles" in cli.fails("users", "set-roles", admin, "--role", "root", code=2)
    assert "no user named 'ghost'" in cli.fails("users", "set-roles", "ghost", "--role", "admin")
    assert "Missing option '--role'" in cli.fails("users", "set-roles", admin, code=2)


def test_users_set_teams(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    epoch = open_auth.users.get(admin).credential_epoch
    out = cli.json("users", "set-teams", admin, "--team", "green", "--team", "blue")
    assert out["teams"] == ["blue", "green"]
    user = open_auth.users.get(admin)
    assert user.teams == {"blue", "green"}
    assert user.credential_epoch > epoch  # live tokens act for the new teams
    assert cli.ok("users", "set-teams", admin).output == f"Teams of {admin}: none\n"
    assert open_auth.users.get(admin).teams == frozenset()
    assert "a team name is" in cli.fails("users", "set-teams", admin, "--team", "no spaces")
    assert "no user named 'ghost'" in cli.fails("users", "set-teams", "ghost", "--team", "blue")


def test_users_disable(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    key = cli.json("keys", "create", "--name", "laptop", "--owner", admin)["key"]
    out = cli.json("users", "disable", admin)
    assert out["disabled"] is True
    assert open_auth.users.get(admin).disabled
    with pytest.raises(InvalidToken):  # a disabled owner's personal key dies with them
        open_auth.authenticate(Credential("apikey", key))
    assert "no user named 'ghost'" in cli.fails("users", "disable", "ghost")


def test_users_list(cli: Cli, admin: str) -> None:
    cli.ok(
        "users",
        "create",
        "a-much-longer-username",
        "--role",
        "employee",
        "--team",
        "green",
        "--password-stdin",
        input=PASSWORD,
    )
    cli.ok("users", "disable", "a-much-longer-username")
    lines = cli.ok("users", "list").output.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLES", "TEAMS", "STATUS", "CREATED"]
    assert len(lines) == 3
    # Aligned: every column starts at the same offset on every line.
    offset = lines[0].index("ROLES")
    assert lines[1][offset:].startswith("employee")
    assert lines[2][offset:].startswith("admin")
    assert "disabled" in lines[1]
    assert "active" in lines[2]

    listed = cli.json("users", "list")
    assert [u["username"] for u in listed] == ["a-much-longer-username", "admin"]
    assert all(set(u) == USER_FIELDS for u in listed)
    assert PASSWORD not in cli.all_output()


def test_users_list_empty(cli: Cli) -> None:
    assert cli.ok("users", "list").output.strip() == "No users."
    assert cli.json("users", "list") == []


# -- keys --------------------------------------------------------------------------------


def test_keys_create_personal(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    human = cli.ok("keys", "create", "--name", "laptop", "--owner", admin).output
    assert "will not be shown again" in human
    [key] = [word for word in human.split() if word.startswith("amk_")]
    principal = open_auth.authenticate(Credential("apikey", key))
    assert principal is not None
    assert principal.subject == admin
    assert f"API key {principal.credential_id} " in human

    out = cli.json("keys", "create", "--name", "ci", "--owner", admin)
    assert set(out) == KEY_FIELDS | {"key"}
    assert list(out)[:2] == ["id", "key"]
    assert out["key"].startswith(f"amk_{out['id']}_")
    assert out["name"] == "ci"
    assert out["owner"] == admin
    assert out["team"] is None
    assert out["scopes"] is None
    assert out["expires_at"] is None
    assert out["revoked_at"] is None
    assert out["status"] == "active"
    assert is_aware_iso(out["created_at"])
    principal = open_auth.authenticate(Credential("bearer", out["key"]))
    assert principal is not None
    assert principal.credential_id == out["id"]


def test_keys_create_team_restricted_expiring(cli: Cli, open_auth: Authenticator) -> None:
    out = cli.json(
        "keys",
        "create",
        "--name",
        "sync",
        "--team",
        "blue",
        "--scope",
        "appointments:read",
        "--scope",
        "reports:read",
        "--expires-in",
        "30d",
    )
    assert out["owner"] is None
    assert out["team"] == "blue"
    assert out["scopes"] == ["appointments:read", "reports:read"]
    created = datetime.fromisoformat(out["created_at"])
    assert datetime.fromisoformat(out["expires_at"]) - created == timedelta(days=30)
    principal = open_auth.authenticate(Credential("apikey", out["key"]))
    assert principal is not None
    assert principal.team == "blue"
    assert principal.scopes == {"appointments:read", "reports:read"}


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["--name", "k"], "exactly one of --owner", 2),
        (["--name", "k", "--owner", "admin", "--team", "blue"], "exactly one of --owner", 2),
        (["--owner", "admin"], "Missing option '--name'", 2),
        (["--name", "k", "--owner", "ghost"], "no user named 'ghost'", 1),
        (["--name", "k", "--team", "no spaces"], "team name", 1),
        (["--name", "k", "--owner", "admin", "--scope", "root"], "unknown scope(s): root", 2),
        (["--name", "k", "--owner", "admin", "--expires-in", "0"], "'0' is not a duration", 2),
        (["--name", "k", "--owner", "admin", "--expires-in", "0s"], "not a positive duration", 2),
        (["--name", "k", "--owner", "admin", "--expires-in", "-1d"], "'-1d' is not a duration", 2),
        (["--name", "k", "--owner", "admin", "--expires-in", "soon"], "'soon'", 2),
        (["--name", "k", "--owner", "admin", "--expires-in", "999999d"], "too long", 2),
    ],
)
def test_keys_create_bad_input(
    cli: Cli, admin: str, open_auth: Authenticator, *, args: list[str], expected: str, code: int
) -> None:
    message = cli.fails("keys", "create", *args, code=code)
    assert expected in message
    assert open_auth.keys.list() == []


def test_keys_create_for_a_user_without_the_top_role(cli: Cli) -> None:
    cli.ok("users", "create", "mia", "--role", "manager", "--password-stdin", input=PASSWORD)
    assert "only a user with role admin" in cli.fails(
        "keys", "create", "--name", "k", "--owner", "mia"
    )


def test_keys_create_duplicate_name(cli: Cli, admin: str) -> None:
    cli.ok("keys", "create", "--name", "laptop", "--owner", admin)
    message = cli.fails("keys", "create", "--name", "laptop", "--owner", admin)
    assert "already exists" in message


def test_keys_list(cli: Cli, admin: str) -> None:
    assert cli.ok("keys", "list").output.strip() == "No API keys."
    assert cli.json("keys", "list") == []
    personal = cli.json("keys", "create", "--name", "laptop", "--owner", admin)
    team = cli.json(
        "keys", "create", "--name", "sync", "--team", "blue", "--scope", "appointments:read"
    )
    table = cli.ok("keys", "list").output
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "FOR", "SCOPES", "STATUS"]
    assert len(lines) == 3
    offset = lines[0].index("STATUS")
    assert all(line[offset:].startswith("active") for line in lines[1:])
    assert personal["id"] in table
    assert team["id"] in table

    listed = cli.json("keys", "list")
    assert {k["id"] for k in listed} == {personal["id"], team["id"]}
    assert all(set(k) == KEY_FIELDS for k in listed)  # never a "key" field
    assert [k["id"] for k in cli.json("keys", "list", "--team", "blue")] == [team["id"]]
    assert [k["id"] for k in cli.json("keys", "list", "--owner", admin)] == [personal["id"]]
    # Each key was printed once, by the command that created it.
    everything = cli.all_output()
    assert everything.count(personal["key"]) == 1
    assert everything.count(team["key"]) == 1


def test_keys_revoke(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    created = cli.json("keys", "create", "--name", "laptop", "--owner", admin)
    assert open_auth.authenticate(Credential("apikey", created["key"])) is not None
    out = cli.json("keys", "revoke", created["id"])
    assert set(out) == KEY_FIELDS
    assert out["status"] == "revoked"
    assert is_aware_iso(out["revoked_at"])
    open_auth.cache.clear()  # another process's cache lives until cache_ttl; ours we drop
    with pytest.raises(InvalidToken):
        open_auth.authenticate(Credential("apikey", created["key"]))
    assert "Revoked" in cli.ok("keys", "revoke", created["id"]).output  # idempotent
    assert "no key with id 'nope'" in cli.fails("keys", "revoke", "nope")
    assert created["key"] not in "\n".join(cli.outputs[-3:])


def test_keys_rotate(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    old = cli.json("keys", "create", "--name", "laptop", "--owner", admin, "--expires-in", "30d")
    new = cli.json("keys", "rotate", old["id"])
    assert set(new) == KEY_FIELDS | {"key", "replaces", "replaced_expires_at"}
    assert new["id"] != old["id"]
    assert new["replaces"] == old["id"]
    assert new["key"] != old["key"]
    assert new["name"] == "laptop"
    assert new["owner"] == admin
    lifetime = datetime.fromisoformat(new["expires_at"]) - datetime.fromisoformat(new["created_at"])
    assert lifetime == timedelta(days=30)
    assert open_auth.authenticate(Credential("apikey", new["key"])) is not None
    with pytest.raises(InvalidToken):  # no grace: the old key stopped at once
        open_auth.authenticate(Credential("apikey", old["key"]))
    statuses = {k["id"]: k["status"] for k in cli.json("keys", "list")}
    assert statuses == {old["id"]: "expired", new["id"]: "active"}
    assert "already rotated" in cli.fails("keys", "rotate", old["id"])
    assert "no key with id 'nope'" in cli.fails("keys", "rotate", "nope")


def test_keys_rotate_with_grace(cli: Cli, admin: str, open_auth: Authenticator) -> None:
    old = cli.json("keys", "create", "--name", "laptop", "--owner", admin)
    human = cli.ok("keys", "rotate", old["id"], "--grace", "1h").output
    assert "will not be shown again" in human
    assert "works until" in human
    [new_key] = [w for w in human.split() if w.startswith("amk_")]
    assert open_auth.authenticate(Credential("apikey", old["key"])) is not None
    assert open_auth.authenticate(Credential("apikey", new_key)) is not None
    statuses = sorted(k["status"] for k in cli.json("keys", "list"))
    assert statuses == ["active", "rotating"]
    again = cli.json("keys", "create", "--name", "other", "--owner", admin)
    out = cli.json("keys", "rotate", again["id"], "--grace", "2h")
    grace_end = datetime.fromisoformat(out["replaced_expires_at"])
    started = datetime.fromisoformat(out["created_at"])
    assert timedelta(hours=2) - timedelta(minutes=1) < grace_end - started <= timedelta(hours=2)


@pytest.mark.parametrize("grace", ["0", "1x", "-1h", "1h30"])
def test_keys_rotate_bad_grace(cli: Cli, admin: str, grace: str) -> None:
    old = cli.json("keys", "create", "--name", "laptop", "--owner", admin)
    message = cli.fails("keys", "rotate", old["id"], "--grace", grace, code=2)
    assert "'--grace'" in message
    assert [k["status"] for k in cli.json("keys", "list")] == ["active"]


def test_no_secret_is_ever_printed_but_the_new_key(
    cli: Cli, admin: str, open_auth: Authenticator
) -> None:
    personal = cli.json("keys", "create", "--name", "laptop", "--owner", admin)
    rotated = cli.json("keys", "rotate", personal["id"], "--grace", "1h")
    cli.ok("keys", "list")
    cli.ok("keys", "revoke", rotated["id"])
    cli.ok("users", "list")
    cli.ok("users", "set-password", admin, "--password-stdin", input="another long password")
    everything = cli.all_output()
    assert PASSWORD not in everything
    assert "another long password" not in everything
    assert everything.count(personal["key"]) == 1
    assert everything.count(rotated["key"]) == 1
    for stored in open_auth.keys.list():
        assert stored.secret_hash.partition("$")[2] not in everything
    admin_hash = open_auth.users.get(admin).password_hash
    assert admin_hash is not None
    assert admin_hash not in everything
    secret = Path(cli.url.removeprefix("sqlite:///") + ".secret").read_text().strip()
    assert secret not in everything


# -- demo (its refusals; the demo itself runs in tests/e2e) --------------------------------


def test_demo_without_its_framework_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes an import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    cli = Cli(f"sqlite:///{tmp_path / 'demo.db'}")
    message = cli.fails("demo")
    assert "pip install 'authmw[fastapi]'" in message
    assert not (tmp_path / "demo.db").exists()  # refused before anything was created


@pytest.mark.parametrize(
    "args", [["--framework", "nope"], ["--port", "0"], ["--port", "65536"], ["--port", "x"]]
)
def test_demo_bad_options(tmp_path: Path, args: list[str]) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'demo.db'}")
    cli.fails("demo", *args, code=2)
    assert not (tmp_path / "demo.db").exists()


def test_command_state_never_closes_an_authenticator_it_was_given(
    authenticator: Authenticator,
) -> None:
    # A plugin mounting these commands passes its app's authenticator: closing it
    # would dispose of the app's database (for an in-memory one, of its data).
    state = CommandState("sqlite://", app_authenticator=authenticator)
    assert state.authenticator() is authenticator
    state.close()
    assert [u.username for u in authenticator.users.list()] == ["admin", "employee", "manager"]
