"""The ``authmw`` command: a database, users, API keys, OAuth2 clients, apps and consents.

Every command that creates or changes something accepts ``--json`` and then
prints exactly one JSON object; list commands print an aligned table, or a JSON
array with ``--json``. Secrets are read from standard input
(``--password-stdin``), never from the command line, where they would land in
shell history and in every local user's ``ps`` output. The only secrets ever
printed are a newly created API key or client secret, once, by the command that
created it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from authmw import config
from authmw import demo as demo_module
from authmw.authenticator import Authenticator
from authmw.clients import check_redirect_uri
from authmw.policy import Policy
from authmw.store import ApiKey, Client, Conflict, Consent, NotFound, User

__all__ = [
    "CommandGroup",
    "CommandState",
    "client_json",
    "consent_json",
    "key_json",
    "main",
    "parse_duration",
    "user_json",
]

# -- durations -----------------------------------------------------------------------

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_UNITS |= {"m": timedelta(minutes=1), "s": timedelta(seconds=1)}
# Units in descending order, each at most once: "1h30m", never "30m1h" or "1h1h",
# so a typo cannot silently mean something else.
_DURATION_RE = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
#: Longer than any key should live, and far from datetime's year-9999 overflow.
MAX_DURATION = timedelta(days=36525)


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``1h30m``, ``2w``, ``90m``, ``45s`` into a positive ``timedelta``.

    Units are ``w``, ``d``, ``h``, ``m`` and ``s``, largest first, each at most
    once. Raises ``ValueError`` for anything else: a bare number, a zero or
    negative length, spaces, fractions, unknown units.
    """
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise ValueError(
            f"{text!r} is not a duration: a number and a unit (w, d, h, m, s), e.g. 30d or 1h30m"
        )
    total = timedelta(0)
    for number, unit in zip(match.groups(), "wdhms", strict=True):
        if number is not None:
            if len(number) > 9:
                raise ValueError(f"{text!r} is too long: at most {MAX_DURATION.days} days")
            total += int(number) * _UNITS[unit]
    if total <= timedelta(0):
        raise ValueError(f"{text!r} is not a positive duration")
    if total > MAX_DURATION:
        raise ValueError(f"{text!r} is too long: at most {MAX_DURATION.days} days")
    return total


def _duration_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """Click callback: parse an optional duration option, or fail with a usage error."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


# -- JSON and table output ---------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def user_json(user: User) -> dict[str, Any]:
    """Return the JSON form of a user (never its password hash)."""
    return {
        "username": user.username,
        "roles": sorted(user.roles),
        "teams": sorted(user.teams),
        "disabled": user.disabled,
        "created_at": _iso(user.created_at),
    }


def key_json(key: ApiKey, now: datetime, *, secret: str | None = None) -> dict[str, Any]:
    """Return the JSON form of a key record; ``secret`` adds the key itself (create, rotate)."""
    out: dict[str, Any] = {"id": key.id}
    if secret is not None:
        out["key"] = secret
    out |= {
        "name": key.name,
        "owner": key.owner,
        "team": key.team,
        "scopes": None if key.scopes is None else sorted(key.scopes),
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "last_used_at": _iso(key.last_used_at),
        "replaced_by": key.replaced_by,
        "status": key.status(now),
    }
    return out


def client_json(client: Client, now: datetime, *, secret: str | None = None) -> dict[str, Any]:
    """Return the JSON form of a client or app; ``secret`` adds its secret (create, rotate).

    Never its secret hashes. A client shows its team and roles, an app its
    redirect URIs and whether it is public or first-party.
    """
    out: dict[str, Any] = {"client_id": client.id}
    if secret is not None:
        out["client_secret"] = secret
    out |= {"name": client.name, "kind": client.kind}
    if client.kind == "client":
        out |= {"team": client.team, "scopes": sorted(client.scopes), "roles": sorted(client.roles)}
    else:
        out |= {
            "redirect_uris": list(client.redirect_uris),
            "scopes": sorted(client.scopes),
            "public": client.public,
            "first_party": client.first_party,
        }
    out |= {
        "disabled": client.disabled,
        # Set once it was enabled again after a disable: what it held before is dead.
        "reenabled_at": _iso(client.reenabled_at),
        "status": _client_status(client, now),
    }
    if not client.public:
        out["previous_secret_expires_at"] = _iso(_grace_end(client, now))
    out["created_at"] = _iso(client.created_at)
    return out


def consent_json(consent: Consent, app: Client | None) -> dict[str, Any]:
    """Return the JSON form of a consent: who allowed which app what, and when."""
    return {
        "user": consent.subject,
        "client_id": consent.client_id,
        "app": None if app is None else app.name,
        "scopes": sorted(consent.scopes),
        "granted_at": _iso(consent.created_at),
        "updated_at": _iso(consent.updated_at),
    }


def _grace_end(client: Client, now: datetime) -> datetime | None:
    """When the previous secret stops working, if it still works."""
    until = client.previous_secret_expires_at
    if client.previous_secret_hash is None or until is None or until <= now:
        return None
    return until


def _client_status(client: Client, now: datetime) -> str:
    if client.disabled:
        return "disabled"
    return "rotating" if _grace_end(client, now) is not None else "active"


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _when(value: datetime | None, never: str = "-") -> str:
    return never if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _safe_url(url: str) -> str:
    # A server URL may carry a database password; never print it.
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<invalid URL>"


# -- shared state and error handling -------------------------------------------------------


@dataclass
class CommandState:
    """The context object of the ``authmw`` commands: a database URL and its authenticator.

    The CLI builds the authenticator from ``url`` on first use. A framework plugin
    that mounts these commands on its own CLI (``flask authmw``) passes the app's
    own ``app_authenticator`` instead, so the commands act on the app's store, policy
    and cache, and a revocation takes effect in that process at once. An
    authenticator passed in belongs to its owner and is not closed here.
    """

    url: str
    app_authenticator: Authenticator | None = None
    #: The policy of the authenticator built from ``url`` (default: ``AUTHMW_POLICY``).
    policy: Policy | None = None

    def __post_init__(self) -> None:
        self._auth = self.app_authenticator
        self._owned = self.app_authenticator is None

    def authenticator(self, *, create: bool = False) -> Authenticator:
        """Build the authenticator; ``create`` allows a new database and signing secret."""
        if self._auth is None:
            try:
                if not create:
                    self._check_exists()
                self._auth = Authenticator.from_env(
                    self.url, create_secret=create, policy=self.policy
                )
            except sa_exc.NoSuchModuleError:  # a subclass of ArgumentError: first
                raise click.BadParameter("unknown database type", param_hint="'--db'") from None
            except sa_exc.ArgumentError:
                raise click.BadParameter("not a valid database URL", param_hint="'--db'") from None
            except ModuleNotFoundError as exc:
                raise click.ClickException(
                    f"the database driver {exc.name!r} is not installed "
                    "(for PostgreSQL: pip install 'authmw[postgres]')"
                ) from None
        return self._auth

    def _check_exists(self) -> None:
        # SQLite creates a missing file on connect: a typo in --db would leave an
        # empty database behind and then report missing tables. Say what happened.
        path = config.sqlite_file(self.url)
        if path is not None and not path.exists():
            raise click.ClickException(
                f"no database at {path}; run `authmw init` to create one (or check --db)"
            )

    def schema_missing(self) -> bool:
        """Whether the database lacks authmw's tables (after a database error)."""
        engine = getattr(self._auth.store, "engine", None) if self._auth is not None else None
        if not isinstance(engine, sa.Engine):
            return False
        try:
            return not sa.inspect(engine).has_table("authmw_users")
        except sa_exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        """Release the database connections, after writing pending key usage."""
        if self._auth is not None and self._owned:
            self._auth.close()


@contextmanager
def _friendly_errors(ctx: click.Context) -> Iterator[None]:
    """Turn the errors a command can meet into one ``Error: ...`` line, never a traceback.

    The core reports bad input as ``ValueError`` (a ``WeakPassword`` too) and
    store outcomes as ``NotFound``/``Conflict``; their messages are fixed text or
    name the offending user, role or key id, never a secret.
    """
    try:
        yield
    except (NotFound, Conflict, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except sa_exc.DBAPIError as exc:
        state = ctx.find_object(CommandState)
        if state is not None and state.schema_missing():
            raise click.ClickException(
                "the database has no authmw tables; run `authmw init` first"
            ) from None
        # The driver's own first line, without SQLAlchemy's statement and parameters.
        reason = str(exc.orig).strip().partition("\n")[0]
        raise click.ClickException(f"database error: {reason}") from None


class CommandGroup(click.Group):
    """A group whose subcommands report expected errors as one ``Error: ...`` line."""

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the chosen subcommand, translating expected errors."""
        with _friendly_errors(ctx):
            return super().invoke(ctx)


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        raise click.UsageError(
            "--password-stdin is required: passwords are read from standard input, "
            "never from the command line"
        )
    if sys.stdin.isatty():
        # Typed by hand: do not echo it, and ask twice so a typo does not lock anyone out.
        value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        return value
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise click.UsageError("no password on standard input")
    return password


def _check_scopes(auth: Authenticator, scopes: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(scopes)
    unknown = sorted(wanted - auth.policy.all_scopes)
    if unknown:
        known = ", ".join(sorted(auth.policy.all_scopes))
        message = f"unknown scope(s): {', '.join(unknown)} (known scopes: {known})"
        raise click.BadParameter(message, param_hint="'--scope'")
    return wanted


def _check_roles(auth: Authenticator, roles: Iterable[str]) -> frozenset[str]:
    try:
        return auth.policy.check_roles(roles)
    except ValueError as exc:
        known = ", ".join(sorted(auth.policy.all_roles))
        raise click.BadParameter(f"{exc} (known roles: {known})", param_hint="'--role'") from None


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
password_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (required; one line).",
)

# -- the command ------------------------------------------------------------------------


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "url",
    metavar="URL",
    envvar="AUTHMW_DATABASE_URL",
    show_envvar=True,
    default=config.DEFAULT_DATABASE_URL,
    show_default=True,
    help="SQLAlchemy database URL.",
)
@click.version_option(package_name="authmw")
@click.pass_context
def main(ctx: click.Context, url: str) -> None:
    """Manage authmw users, API keys, OAuth2 clients and apps, and run the demo API."""
    # A framework plugin running these commands for its app hands in the app's
    # policy as the context object (``main.main(obj=policy)``), whatever the app
    # built it from: the roles and scopes it checks are then the app's own.
    state = CommandState(url, policy=ctx.find_object(Policy))
    ctx.obj = state
    ctx.call_on_close(state.close)


@main.command()
@json_option
@click.pass_obj
def init(state: CommandState, *, as_json: bool) -> None:
    """Create the tables and, for a file database, the signing secret beside it."""
    secret_file = config.secret_file_for(state.url)
    if secret_file is not None:
        secret_file = secret_file.resolve()
    from_env = any(k.strip() for k in os.environ.get("AUTHMW_SECRET_KEY", "").split(","))
    source = "environment" if from_env else "file" if secret_file is not None else "none"
    existed = secret_file is not None and secret_file.exists()
    auth = state.authenticator(create=True)
    with _migration_errors():
        # A new database is created at the latest schema revision; one made by an
        # older release is upgraded to it, keeping every row.
        from authmw.store import migrations  # noqa: PLC0415

        engine = _sql_engine(auth)
        before = None if engine is None else migrations.current(engine)
        auth.store.create_schema()
        after = None if engine is None else migrations.current(engine)
    if source == "file":
        config.secret_keys(state.url, create=True)
    if as_json:
        _print_json(
            {
                "database": _safe_url(state.url),
                "secret_source": source,
                "secret_file": None if source != "file" else str(secret_file),
                "secret_created": source == "file" and not existed,
            }
        )
    else:
        click.echo(f"Database ready: {_safe_url(state.url)}")
        if before is not None and before != after:
            click.echo(f"Schema upgraded from revision {before} to {after}")
        if source == "environment":
            click.echo("Signing secret: from AUTHMW_SECRET_KEY")
        elif source == "file":
            verb = "kept existing" if existed else "created"
            click.echo(
                f"Signing secret: {verb} {secret_file} (owner-only; back it up with the database)"
            )
    if source == "none":
        click.echo(
            "Warning: this database is not a local file, so no secret can be kept beside it: "
            "set AUTHMW_SECRET_KEY (comma-separated keys, newest first) wherever authmw uses it.",
            err=True,
        )


# -- database schema ------------------------------------------------------------------


# authmw.store.migrations is imported inside the commands that need it: loading
# Alembic would slow every other command down.


def _sql_engine(auth: Authenticator) -> sa.Engine | None:
    """Return the engine of a SQL store; ``None`` for another kind of store (no schema)."""
    engine = getattr(auth.store, "engine", None)
    return engine if isinstance(engine, sa.Engine) else None


@contextmanager
def _migration_errors() -> Iterator[None]:
    from alembic.util import CommandError  # noqa: PLC0415

    from authmw.store.migrations import MigrationError  # noqa: PLC0415

    try:
        yield
    except (MigrationError, CommandError) as exc:  # CommandError: e.g. an unknown --revision
        raise click.ClickException(str(exc)) from None


def _schema_engine(state: CommandState) -> sa.Engine:
    engine = _sql_engine(state.authenticator())
    if engine is None:
        raise click.ClickException("this store is not a SQL database: it has no schema revisions")
    return engine


def _schema_json(state: CommandState, current: str | None, head: str) -> dict[str, Any]:
    return {
        "database": _safe_url(state.url),
        "current": current,
        "head": head,
        "upgrade_pending": current != head,
    }


@main.group()
def db() -> None:
    """Show and upgrade the database schema (versioned migrations)."""


@db.command("current")
@json_option
@click.pass_obj
def db_current(state: CommandState, *, as_json: bool) -> None:
    """Print the database's schema revision, the latest one, and whether to upgrade."""
    from authmw.store import migrations  # noqa: PLC0415

    with _migration_errors():
        current = migrations.current(_schema_engine(state))
    head = migrations.head()
    if as_json:
        _print_json(_schema_json(state, current, head))
        return
    if current is None:
        click.echo(f"No authmw tables yet; the latest revision is {head}: run `authmw db upgrade`")
    elif current == head:
        click.echo(f"Schema revision {current} (the latest)")
    else:
        click.echo(f"Schema revision {current}; the latest is {head}: run `authmw db upgrade`")


@db.command("upgrade")
@click.option(
    "--revision",
    default="head",
    show_default=True,
    metavar="REV",
    help="The revision to upgrade to (default: the latest).",
)
@json_option
@click.pass_obj
def db_upgrade(state: CommandState, *, revision: str, as_json: bool) -> None:
    """Migrate the database schema to the latest revision (or REV), keeping every row."""
    from authmw.store import migrations  # noqa: PLC0415

    engine = _schema_engine(state)
    with _migration_errors():
        before = migrations.current(engine)
        migrations.upgrade(engine, revision)
        after = migrations.current(engine)
    head = migrations.head()
    if as_json:
        _print_json(_schema_json(state, after, head) | {"previous": before})
    elif before == after:
        click.echo(f"Schema revision {after}: nothing to upgrade")
    else:
        click.echo(f"Schema upgraded from revision {before or '(empty)'} to {after}")


# -- users ----------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Create and change user accounts."""


@users.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeatable).")
@click.option("--team", "teams", multiple=True, help="A team the user belongs to (repeatable).")
@password_option
@json_option
@click.pass_obj
def users_create(
    state: CommandState,
    *,
    name: str,
    roles: tuple[str, ...],
    teams: tuple[str, ...],
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create user NAME."""
    auth = state.authenticator()
    wanted = _check_roles(auth, roles)
    password = _read_password(password_stdin)
    user = auth.users.create(name, password=password, roles=wanted, teams=teams)
    if as_json:
        _print_json(user_json(user))
    else:
        roles_text = ", ".join(sorted(user.roles))
        teams_text = ", ".join(sorted(user.teams)) or "none"
        click.echo(f"Created user {user.username} (roles: {roles_text}; teams: {teams_text})")


@users.command("set-password")
@click.argument("name")
@password_option
@json_option
@click.pass_obj
def users_set_password(
    state: CommandState, *, name: str, password_stdin: bool, as_json: bool
) -> None:
    """Set the password of user NAME; the user's live tokens stop working."""
    auth = state.authenticator()
    auth.users.get(name)  # an unknown name fails before the password is read
    user = auth.users.set_password(name, _read_password(password_stdin))
    if as_json:
        _print_json(user_json(user))
    else:
        click.echo(f"Changed the password of {user.username}; their live tokens no longer work")


@users.command("set-roles")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeatable).")
@json_option
@click.pass_obj
def users_set_roles(
    state: CommandState, *, name: str, roles: tuple[str, ...], as_json: bool
) -> None:
    """Replace the roles of user NAME."""
    auth = state.authenticator()
    user = auth.users.set_roles(name, _check_roles(auth, roles))
    if as_json:
        _print_json(user_json(user))
    else:
        click.echo(f"Roles of {user.username}: {', '.join(sorted(user.roles))}")


@users.command("set-teams")
@click.argument("name")
@click.option("--team", "teams", multiple=True, help="A team (repeatable); none: no team.")
@json_option
@click.pass_obj
def users_set_teams(
    state: CommandState, *, name: str, teams: tuple[str, ...], as_json: bool
) -> None:
    """Replace the teams of user NAME; their tokens act for the new teams from now on."""
    user = state.authenticator().users.set_teams(name, teams)
    if as_json:
        _print_json(user_json(user))
    else:
        click.echo(f"Teams of {user.username}: {', '.join(sorted(user.teams)) or 'none'}")


@users.command("disable")
@click.argument("name")
@json_option
@click.pass_obj
def users_disable(state: CommandState, *, name: str, as_json: bool) -> None:
    """Disable user NAME: their tokens and personal API keys stop working."""
    user = state.authenticator().users.disable(name)
    if as_json:
        _print_json(user_json(user))
    else:
        click.echo(f"Disabled {user.username}; their tokens and personal API keys no longer work")


@users.command("list")
@json_option
@click.pass_obj
def users_list(state: CommandState, *, as_json: bool) -> None:
    """List users."""
    found = state.authenticator().users.list()
    if as_json:
        _print_json([user_json(u) for u in found])
        return
    if not found:
        click.echo("No users.")
        return
    rows = (
        (
            u.username,
            ",".join(sorted(u.roles)),
            ",".join(sorted(u.teams)) or "-",
            "disabled" if u.disabled else "active",
            _when(u.created_at),
        )
        for u in found
    )
    click.echo(_table(("USERNAME", "ROLES", "TEAMS", "STATUS", "CREATED"), rows))


# -- API keys -----------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Create, list, revoke and rotate API keys."""


def _holder(key: ApiKey) -> str:
    return f"team {key.team}" if key.team is not None else f"owner {key.owner}"


def _show_new_key(key: ApiKey, secret: str) -> None:
    reach = "global" if key.scopes is None else f"only {', '.join(sorted(key.scopes))}"
    expiry = "never expires" if key.expires_at is None else f"expires {_when(key.expires_at)}"
    click.echo(f"API key {key.id} {key.name!r} ({_holder(key)}; {reach}; {expiry}):")
    click.echo(secret)
    click.echo("Copy it now: it will not be shown again.")


@keys.command("create")
@click.option("--name", required=True, help="A name, unique among the holder's active keys.")
@click.option("--owner", metavar="USER", help="Personal key acting for USER.")
@click.option("--team", metavar="TEAM", help="Team key: a service account of TEAM.")
@click.option("--scope", "scopes", multiple=True, help="Restrict the key to a scope (repeatable).")
@click.option(
    "--expires-in", callback=_duration_option, help="Lifetime, e.g. 30d or 12h (default: none)."
)
@json_option
@click.pass_obj
def keys_create(
    state: CommandState,
    *,
    name: str,
    owner: str | None,
    team: str | None,
    scopes: tuple[str, ...],
    expires_in: timedelta | None,
    as_json: bool,
) -> None:
    """Create an API key for a user (--owner) or a team (--team)."""
    if (owner is None) == (team is None):
        raise click.UsageError("give exactly one of --owner USER (personal key) or --team TEAM")
    auth = state.authenticator()
    _check_scopes(auth, scopes)
    issued = auth.keys.create(
        name=name, owner=owner, team=team, scopes=scopes or None, expires_in=expires_in
    )
    if as_json:
        _print_json(key_json(issued.record, datetime.now(UTC), secret=issued.key))
    else:
        _show_new_key(issued.record, issued.key)


@keys.command("list")
@click.option("--owner", metavar="USER", help="Only USER's personal keys.")
@click.option("--team", metavar="TEAM", help="Only TEAM's keys.")
@json_option
@click.pass_obj
def keys_list(state: CommandState, *, owner: str | None, team: str | None, as_json: bool) -> None:
    """List API keys, newest first (never their secrets)."""
    found = state.authenticator().keys.list(owner=owner, team=team)
    now = datetime.now(UTC)
    if as_json:
        _print_json([key_json(k, now) for k in found])
        return
    if not found:
        click.echo("No API keys.")
        return
    rows = (
        (
            k.id,
            k.name,
            _holder(k),
            "all" if k.scopes is None else ",".join(sorted(k.scopes)),
            k.status(now),
            _when(k.created_at),
            _when(k.expires_at, "never"),
            _when(k.last_used_at, "never"),
        )
        for k in found
    )
    headers = ("ID", "NAME", "FOR", "SCOPES", "STATUS", "CREATED", "EXPIRES", "LAST USED")
    click.echo(_table(headers, rows))


@keys.command("revoke")
@click.argument("key_id", metavar="ID")
@json_option
@click.pass_obj
def keys_revoke(state: CommandState, *, key_id: str, as_json: bool) -> None:
    """Revoke key ID for good."""
    auth = state.authenticator()
    key = auth.keys.revoke(key_id)
    if as_json:
        _print_json(key_json(key, datetime.now(UTC)))
    else:
        click.echo(
            f"Revoked key {key.id} {key.name!r}; running servers refuse it within their cache "
            f"lifetime ({auth.settings.cache_ttl:g} s by default)"
        )


@keys.command("rotate")
@click.argument("key_id", metavar="ID")
@click.option(
    "--grace",
    callback=_duration_option,
    help="How long the old key keeps working, e.g. 1h (default: it stops now).",
)
@json_option
@click.pass_obj
def keys_rotate(
    state: CommandState, *, key_id: str, grace: timedelta | None, as_json: bool
) -> None:
    """Replace key ID by a new key with the same name, holder and scopes."""
    auth = state.authenticator()
    issued = auth.keys.rotate(key_id, grace=grace or timedelta(0))
    old = auth.keys.get(key_id)
    now = datetime.now(UTC)
    if as_json:
        _print_json(
            key_json(issued.record, now, secret=issued.key)
            | {"replaces": old.id, "replaced_expires_at": _iso(old.expires_at)}
        )
    else:
        until = "stops working now" if grace is None else f"works until {_when(old.expires_at)}"
        click.echo(f"Rotated key {old.id}: the old key {until}.")
        _show_new_key(issued.record, issued.key)


# -- OAuth2 clients and apps ------------------------------------------------------------------

_ARTICLES = {"client": "a", "app": "an"}
_GROUPS = {"client": "clients", "app": "apps"}


@main.group()
def clients() -> None:
    """Register machine-to-machine OAuth2 clients (client credentials grant)."""


@main.group()
def apps() -> None:
    """Register OAuth2 apps that act for users (authorization code grant with PKCE)."""


def _of_kind(auth: Authenticator, client_id: str, kind: str, *, why: str | None = None) -> Client:
    """Return the client ``client_id`` if it is of ``kind``; if not, say which command fits.

    ``why``: what to say instead, where no command of the other kind fits.
    """
    client = auth.clients.get(client_id)
    if client.kind != kind:
        fits = why or f"use `authmw {_GROUPS[client.kind]} ...`"
        raise click.ClickException(
            f"{client_id} is {_ARTICLES[client.kind]} {client.kind}, not {_ARTICLES[kind]} "
            f"{kind}: {fits}"
        )
    return client


def _describe(client: Client) -> str:
    if client.kind == "client":
        scopes = ", ".join(sorted(client.scopes)) or "none"
        roles = ", ".join(sorted(client.roles)) or "none"
        return f"team {client.team}; scopes: {scopes}; roles: {roles}"
    kind = "public, PKCE only" if client.public else "confidential"
    if client.first_party:
        kind += ", first-party"
    # An app that registered no scopes may ask for any (the user still consents, and
    # a delegated token never exceeds the user's role): "none" would understate it.
    # A machine client, above, gets exactly its scopes: there "none" is the truth.
    scopes = ", ".join(sorted(client.scopes)) or "any (none registered)"
    return f"{kind}; scopes: {scopes}; redirect URIs: {', '.join(client.redirect_uris)}"


def _show_client(client: Client, secret: str | None) -> None:
    click.echo(f"OAuth2 {client.kind} {client.id} {client.name!r} ({_describe(client)}):")
    click.echo(f"client_id:     {client.id}")
    if secret is not None:
        click.echo(f"client_secret: {secret}")
        click.echo("Copy the secret now: it will not be shown again.")


def _list_clients(state: CommandState, kind: str, *, as_json: bool) -> None:
    found = state.authenticator().clients.list(kind=kind)
    now = datetime.now(UTC)
    if as_json:
        _print_json([client_json(c, now) for c in found])
        return
    if not found:
        click.echo(f"No {_GROUPS[kind]}.")
        return
    if kind == "client":
        headers: tuple[str, ...] = ("ID", "NAME", "TEAM", "SCOPES", "ROLES", "STATUS", "CREATED")
        rows = [
            (
                c.id,
                c.name,
                c.team or "-",
                ",".join(sorted(c.scopes)) or "-",
                ",".join(sorted(c.roles)) or "-",
                _client_status(c, now),
                _when(c.created_at),
            )
            for c in found
        ]
    else:
        headers = ("ID", "NAME", "TYPE", "SCOPES", "REDIRECT URIS", "STATUS", "CREATED")
        rows = [
            (
                c.id,
                c.name,
                ("public" if c.public else "confidential")
                + (",first-party" if c.first_party else ""),
                ",".join(sorted(c.scopes)) or "(any)",  # none registered: see _describe
                " ".join(c.redirect_uris),
                _client_status(c, now),
                _when(c.created_at),
            )
            for c in found
        ]
    click.echo(_table(headers, rows))


def _set_disabled(
    state: CommandState, client_id: str, kind: str, *, disabled: bool, as_json: bool
) -> None:
    auth = state.authenticator()
    was = _of_kind(auth, client_id, kind)
    if disabled:
        client = auth.clients.disable(client_id)
        message = (
            f"Disabled {kind} {client.id} {client.name!r}: it can no longer authenticate,"
            " and what it holds now stays dead"
        )
    else:
        client = auth.clients.enable(client_id)
        message = (
            f"Enabled {kind} {client.id} {client.name!r}: it gets new tokens;"
            " those issued before stay dead"
            if was.disabled
            else f"{kind.capitalize()} {client.id} {client.name!r} was not disabled: no change"
        )
    if as_json:
        _print_json(client_json(client, datetime.now(UTC)))
    else:
        click.echo(message)


def _rotate_secret(
    state: CommandState, client_id: str, kind: str, *, grace: timedelta | None, as_json: bool
) -> None:
    auth = state.authenticator()
    _of_kind(auth, client_id, kind)
    issued = auth.clients.rotate_secret(client_id, grace=grace or timedelta(0))
    now = datetime.now(UTC)
    if as_json:
        _print_json(client_json(issued.client, now, secret=issued.secret))
        return
    until = _grace_end(issued.client, now)
    old = "stops working now" if until is None else f"works until {_when(until)}"
    click.echo(f"Rotated the secret of {kind} {client_id}: the old secret {old}.")
    _show_client(issued.client, issued.secret)


grace_option = click.option(
    "--grace",
    callback=_duration_option,
    help="How long the old secret keeps working, e.g. 1h (default: it stops now).",
)
client_id_argument = click.argument("client_id", metavar="ID")


@clients.command("create")
@click.option("--name", required=True, help="A name to recognise the client by.")
@click.option("--team", required=True, metavar="TEAM", help="The team the client acts for.")
@click.option("--scope", "scopes", multiple=True, help="A scope to grant (repeatable).")
@click.option("--role", "roles", multiple=True, help="A role its tokens carry (repeatable).")
@json_option
@click.pass_obj
def clients_create(
    state: CommandState,
    *,
    name: str,
    team: str,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a machine-to-machine client of TEAM; prints its secret once."""
    auth = state.authenticator()
    granted = _check_scopes(auth, scopes)
    wanted = _check_roles(auth, roles)
    issued = auth.clients.create_client(name, team=team, scopes=granted, roles=wanted)
    if as_json:
        _print_json(client_json(issued.client, datetime.now(UTC), secret=issued.secret))
    else:
        _show_client(issued.client, issued.secret)


@apps.command("create")
@click.option("--name", required=True, help="The name users see on the consent page.")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    metavar="URI",
    help="An exact redirect URI (repeatable, at most 10).",
)
@click.option("--scope", "scopes", multiple=True, help="A scope the app may ask for (repeatable).")
@click.option("--public", is_flag=True, help="No secret: a native or browser app (PKCE only).")
@click.option(
    "--first-party",
    is_flag=True,
    help="Your own app: may also use the password grant. Never for a third party.",
)
@json_option
@click.pass_obj
def apps_create(
    state: CommandState,
    *,
    name: str,
    redirect_uris: tuple[str, ...],
    scopes: tuple[str, ...],
    public: bool,
    first_party: bool,
    as_json: bool,
) -> None:
    """Register an app acting for users; prints its secret once (none if --public)."""
    auth = state.authenticator()
    for uri in redirect_uris:
        try:
            check_redirect_uri(uri)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--redirect-uri'") from None
    allowed = _check_scopes(auth, scopes)
    issued = auth.clients.create_app(
        name, redirect_uris=redirect_uris, scopes=allowed, public=public, first_party=first_party
    )
    if as_json:
        _print_json(client_json(issued.client, datetime.now(UTC), secret=issued.secret))
    else:
        _show_client(issued.client, issued.secret)


@clients.command("list")
@json_option
@click.pass_obj
def clients_list(state: CommandState, *, as_json: bool) -> None:
    """List clients (never their secrets)."""
    _list_clients(state, "client", as_json=as_json)


@apps.command("list")
@json_option
@click.pass_obj
def apps_list(state: CommandState, *, as_json: bool) -> None:
    """List apps (never their secrets)."""
    _list_clients(state, "app", as_json=as_json)


@clients.command("disable")
@client_id_argument
@json_option
@click.pass_obj
def clients_disable(state: CommandState, *, client_id: str, as_json: bool) -> None:
    """Disable client ID: its secret stops authenticating and its tokens end for good."""
    _set_disabled(state, client_id, "client", disabled=True, as_json=as_json)


@apps.command("disable")
@client_id_argument
@json_option
@click.pass_obj
def apps_disable(state: CommandState, *, client_id: str, as_json: bool) -> None:
    """Disable app ID: it can no longer authenticate or obtain tokens; its tokens end for good."""
    _set_disabled(state, client_id, "app", disabled=True, as_json=as_json)


@clients.command("enable")
@client_id_argument
@json_option
@click.pass_obj
def clients_enable(state: CommandState, *, client_id: str, as_json: bool) -> None:
    """Re-enable client ID (its tokens from before the disable stay dead)."""
    _set_disabled(state, client_id, "client", disabled=False, as_json=as_json)


@apps.command("enable")
@client_id_argument
@json_option
@click.pass_obj
def apps_enable(state: CommandState, *, client_id: str, as_json: bool) -> None:
    """Re-enable app ID (its tokens and codes from before the disable stay dead)."""
    _set_disabled(state, client_id, "app", disabled=False, as_json=as_json)


@clients.command("rotate-secret")
@client_id_argument
@grace_option
@json_option
@click.pass_obj
def clients_rotate_secret(
    state: CommandState, *, client_id: str, grace: timedelta | None, as_json: bool
) -> None:
    """Give client ID a new secret; prints it once."""
    _rotate_secret(state, client_id, "client", grace=grace, as_json=as_json)


@apps.command("rotate-secret")
@client_id_argument
@grace_option
@json_option
@click.pass_obj
def apps_rotate_secret(
    state: CommandState, *, client_id: str, grace: timedelta | None, as_json: bool
) -> None:
    """Give app ID a new secret; prints it once. Public apps have none."""
    _rotate_secret(state, client_id, "app", grace=grace, as_json=as_json)


# -- consents ---------------------------------------------------------------------------------


@main.group()
def consents() -> None:
    """List and withdraw what users allowed apps (authorization code grant)."""


@consents.command("list")
@click.option("--user", metavar="NAME", help="Only NAME's consents.")
@click.option("--client", "client_id", metavar="ID", help="Only consents to app ID.")
@json_option
@click.pass_obj
def consents_list(
    state: CommandState, *, user: str | None, client_id: str | None, as_json: bool
) -> None:
    """List consents, by user, then app."""
    auth = state.authenticator()
    found = auth.store.list_consents(subject=user, client_id=client_id)
    apps = {c.id: c for c in auth.clients.list(kind="app")}
    if as_json:
        _print_json([consent_json(c, apps.get(c.client_id)) for c in found])
        return
    if not found:
        click.echo("No consents.")
        return
    rows = (
        (
            c.subject,
            c.client_id,
            apps[c.client_id].name if c.client_id in apps else "-",
            ",".join(sorted(c.scopes)) or "-",
            _when(c.created_at),
            _when(c.updated_at),
        )
        for c in found
    )
    click.echo(_table(("USER", "APP ID", "APP", "SCOPES", "GRANTED", "UPDATED"), rows))


@consents.command("revoke")
@click.argument("user", metavar="USER")
@client_id_argument
@json_option
@click.pass_obj
def consents_revoke(state: CommandState, *, user: str, client_id: str, as_json: bool) -> None:
    """Withdraw USER's consent to app ID: the app's tokens for USER stop working."""
    auth = state.authenticator()
    auth.users.get(user)  # an unknown user or app is reported as such, not as "no consent"
    app = _of_kind(
        auth, client_id, "app", why="a machine client acts for no user, so no user consents to it"
    )
    consent = auth.store.get_consent(user, client_id)
    if consent is None:
        # Checked first, so a refused command changes nothing.
        raise click.ClickException(f"{user} has not given app {client_id} consent")
    auth.tokens.revoke_consent(user, client_id)
    if as_json:
        _print_json(consent_json(consent, app) | {"revoked": True})
    else:
        click.echo(
            f"Withdrew the consent of {user} to app {app.id} {app.name!r}; running servers refuse "
            f"the app's tokens for {user} within their cache lifetime "
            f"({auth.settings.cache_ttl:g} s by default)"
        )


# -- demo -------------------------------------------------------------------------------

#: Frameworks with a demo app in authmw_examples.
FRAMEWORKS = tuple(demo_module.SERVERS)
_FRAMEWORK_MODULES = {
    "fastapi": {"fastapi", "starlette", "uvicorn", "pydantic"},
    "flask": {"flask", "werkzeug", "waitress", "asgiref"},
    "django": {"django", "rest_framework", "waitress", "asgiref"},
}


@main.command()
@click.option("--framework", type=click.Choice(FRAMEWORKS), default="fastapi", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_obj
def demo(state: CommandState, *, framework: str, host: str, port: int) -> None:
    """Serve the demo API, seeding demo users and keys on first run."""
    try:
        create_app = demo_module.load_app(framework)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing.startswith("authmw_examples"):
            raise click.ClickException(
                f"this installation of authmw has no {framework} demo app ({missing})"
            ) from None
        if missing.partition(".")[0] not in _FRAMEWORK_MODULES[framework]:
            raise
        raise click.ClickException(
            f"the {framework} demo needs the {framework} extra: pip install 'authmw[{framework}]'"
        ) from None
    auth = state.authenticator(create=True)
    seeded = demo_module.prepare(auth, state.url)
    click.echo(demo_module.banner(auth, seeded, framework=framework, host=host, port=port))
    demo_module.serve(create_app(auth), framework=framework, host=host, port=port)
