"""The SQL store, on SQLAlchemy Core: SQLite embedded by default, PostgreSQL by URL.

Verification reads exactly one row through a primary-key lookup (a key joined
to its owner), so its cost does not grow with the number of keys stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from authmw.store import (
    ApiKey,
    AuthorizationCode,
    Client,
    Conflict,
    Consent,
    KeyMatch,
    NotFound,
    RefreshToken,
    Revocation,
    User,
)
from authmw.store._lookup import Lookup

__all__ = ["SQLStore", "metadata"]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Normalise to UTC; SQLite gets a naive UTC value."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("authmw stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

users = sa.Table(
    "authmw_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    # Roles, teams and scopes are space-separated like OAuth2 scope strings
    # (RFC 6749 section 3.3); their names cannot contain spaces.
    sa.Column("roles", sa.Text, nullable=False, default=""),
    sa.Column("teams", sa.Text, nullable=False, default=""),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("credential_epoch", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = sa.Table(
    "authmw_api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey(users.c.id), nullable=True, index=True),
    sa.Column("team", sa.String(150), nullable=True, index=True),
    sa.Column("scopes", sa.Text, nullable=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("replaced_by", sa.String(32), nullable=True),
)

clients = sa.Table(
    "authmw_clients",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("team", sa.String(150), nullable=True),
    sa.Column("scopes", sa.Text, nullable=False, default=""),
    sa.Column("roles", sa.Text, nullable=False, default=""),
    # A JSON array: redirect URIs are kept exactly as registered, in order.
    sa.Column("redirect_uris", sa.Text, nullable=False, default="[]"),
    sa.Column("public", sa.Boolean, nullable=False, default=False),
    sa.Column("first_party", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("secret_hash", sa.String(128), nullable=True),
    sa.Column("previous_secret_hash", sa.String(128), nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Added by revision 0004: when it was last enabled again (Client.predates_reenable).
    sa.Column("reenabled_at", UTCDateTime, nullable=True),
)

refresh_tokens = sa.Table(
    "authmw_refresh_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("family_id", sa.String(32), nullable=False, index=True),
    sa.Column("client_id", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(150), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False, default=""),
    sa.Column("credential_epoch", sa.Integer, nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("idle_expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index("ix_authmw_refresh_tokens_subject_client_id", "subject", "client_id"),
)

authorization_codes = sa.Table(
    "authmw_authorization_codes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("client_id", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(150), nullable=False),
    # Text, not a bounded string: compared character for character at the token endpoint.
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False, default=""),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("credential_epoch", sa.Integer, nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Column("family_id", sa.String(32), nullable=True),
)

consents = sa.Table(
    "authmw_consents",
    metadata,
    sa.Column("subject", sa.String(150), primary_key=True),
    # The primary key serves one user's consents; this index serves one app's.
    sa.Column("client_id", sa.String(32), primary_key=True, index=True),
    sa.Column("scopes", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

revocations = sa.Table(
    "authmw_revocations",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("subject", sa.String(150), nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    # Every process polls "what was revoked since I last looked": an index scan.
    sa.Column("revoked_at", UTCDateTime, nullable=False, index=True),
)


def _words(text: str | None) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


def _join(words: frozenset[str] | None) -> str | None:
    return None if words is None else " ".join(sorted(words))


def _now() -> datetime:
    return datetime.now(UTC)


_USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.roles,
    users.c.teams,
    users.c.disabled,
    users.c.credential_epoch,
    users.c.created_at,
    users.c.password_hash,
)


#: The owner's columns in the key lookup, and the labels they are selected under.
_OWNER_LABELS = tuple((c.name, f"o_{c.name}") for c in users.c)


def _user(m: Mapping[Any, Any]) -> User:
    return User(
        id=m["id"],
        username=m["username"],
        roles=_words(m["roles"]),
        teams=_words(m["teams"]),
        disabled=bool(m["disabled"]),
        credential_epoch=m["credential_epoch"],
        created_at=m["created_at"],
        password_hash=m["password_hash"],
    )


def _key(m: Mapping[Any, Any], owner: str | None) -> ApiKey:
    scopes = m["scopes"]
    return ApiKey(
        id=m["id"],
        name=m["name"],
        owner=owner,
        team=m["team"],
        scopes=None if scopes is None else _words(scopes),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
        replaced_by=m["replaced_by"],
        secret_hash=m["secret_hash"],
    )


def _client(m: Mapping[Any, Any]) -> Client:
    return Client(
        id=m["id"],
        name=m["name"],
        kind=m["kind"],
        team=m["team"],
        scopes=_words(m["scopes"]),
        roles=_words(m["roles"]),
        redirect_uris=tuple(json.loads(m["redirect_uris"])),
        public=bool(m["public"]),
        first_party=bool(m["first_party"]),
        created_at=m["created_at"],
        disabled=bool(m["disabled"]),
        secret_hash=m["secret_hash"],
        previous_secret_hash=m["previous_secret_hash"],
        previous_secret_expires_at=m["previous_secret_expires_at"],
        reenabled_at=m["reenabled_at"],
    )


def _refresh_token(m: Mapping[Any, Any]) -> RefreshToken:
    return RefreshToken(
        id=m["id"],
        family_id=m["family_id"],
        client_id=m["client_id"],
        subject=m["subject"],
        kind=m["kind"],
        scopes=_words(m["scopes"]),
        credential_epoch=m["credential_epoch"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        idle_expires_at=m["idle_expires_at"],
        used_at=m["used_at"],
        revoked_at=m["revoked_at"],
        secret_hash=m["secret_hash"],
    )


def _refresh_token_values(token: RefreshToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "family_id": token.family_id,
        "client_id": token.client_id,
        "subject": token.subject,
        "kind": token.kind,
        "scopes": _join(token.scopes),
        "credential_epoch": token.credential_epoch,
        "secret_hash": token.secret_hash,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "idle_expires_at": token.idle_expires_at,
        "used_at": token.used_at,
        "revoked_at": token.revoked_at,
    }


def _code(m: Mapping[Any, Any]) -> AuthorizationCode:
    return AuthorizationCode(
        id=m["id"],
        client_id=m["client_id"],
        subject=m["subject"],
        redirect_uri=m["redirect_uri"],
        scopes=_words(m["scopes"]),
        code_challenge=m["code_challenge"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        credential_epoch=m["credential_epoch"],
        used_at=m["used_at"],
        family_id=m["family_id"],
        secret_hash=m["secret_hash"],
    )


def _consent(m: Mapping[Any, Any]) -> Consent:
    return Consent(
        subject=m["subject"],
        client_id=m["client_id"],
        scopes=_words(m["scopes"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _create_owner_only(
    _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
) -> None:
    # SQLite creates a missing database file with the process umask, usually
    # world-readable, and the file holds password and key hashes. So a new file is
    # created here first, owner-only like the ".secret" beside it (authmw.config),
    # and SQLite opens that one; its -wal and -shm files take the database file's
    # permissions. O_EXCL: an existing file, and its mode, are never touched.
    if cparams.get("uri") or not cargs or cargs[0] in ("", ":memory:"):
        return  # a file: URI is left to SQLite; the others have no file
    # OSError: it exists; or no directory, no permission, and SQLite fails alike and says so.
    with contextlib.suppress(OSError):
        os.close(os.open(cargs[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (every app process) run beside one writer (the CLI, a
    # revocation) without "database is locked"; busy_timeout makes a writer wait
    # for another instead of failing at once.
    cursor.execute("PRAGMA busy_timeout=5000")
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    # WAL is a property of the file, so it is switched once, by the first connection.
    # The switch wants an exclusive lock while holding a shared one, and SQLite does
    # not wait (busy_timeout) in that case, to avoid a deadlock: connections opening
    # a new file together would fail with "database is locked". Retry for them.
    deadline = time.monotonic() + 5.0
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            # A database in memory stays in "memory" mode: nothing to switch.
            if cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings authmw relies on for each backend."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        if memory:
            # One shared connection, or every thread would see its own empty database.
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "do_connect", _create_owner_only)
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    # A connection that died while idle (a database restart) is found and replaced
    # before use, so the process recovers by itself when the database returns.
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql":
        # An unreachable server fails a request in seconds (503), instead of
        # holding it for the operating system's TCP timeout.
        connect_args = dict(kwargs.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", 5)
        kwargs["connect_args"] = connect_args
        kwargs.setdefault("pool_timeout", 5)
    return sa.create_engine(url, **kwargs)


class SQLStore:
    """A :class:`~authmw.store.Store` on any SQLAlchemy engine.

    >>> store = SQLStore("sqlite://")   # in memory, for tests
    >>> store.create_schema()
    """

    def __init__(self, url_or_engine: str | Engine, **engine_options: Any) -> None:
        if isinstance(url_or_engine, Engine):
            self.engine = url_or_engine
        else:
            self.engine = create_engine(url_or_engine, **engine_options)
        self._reader = self.engine
        if self.engine.dialect.name == "postgresql":
            # The lookups of verification are single SELECTs. In a transaction,
            # each would cost BEGIN, the query and a ROLLBACK on return, plus the
            # pool's liveness ping: four round trips. On a pool of their own, in
            # autocommit and without the ping, they cost one; a connection that
            # died meanwhile is retried once (see _read).
            if isinstance(url_or_engine, Engine):
                self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            else:
                options = {**engine_options, "pool_pre_ping": False}
                self._reader = create_engine(url_or_engine, isolation_level="AUTOCOMMIT", **options)
        owner = users.alias("owner")
        reader = self._reader
        self._find_key = Lookup(
            reader,
            sa.select(api_keys, *(c.label(f"o_{c.name}") for c in owner.c))
            .select_from(api_keys.outerjoin(owner, api_keys.c.owner_id == owner.c.id))
            .where(api_keys.c.id == sa.bindparam("key_id")),
        )
        self._get_user = Lookup(
            reader, sa.select(*_USER_COLUMNS).where(users.c.username == sa.bindparam("username"))
        )
        self._get_client = Lookup(
            reader, sa.select(clients).where(clients.c.id == sa.bindparam("client_id"))
        )
        self._get_refresh_token = Lookup(
            reader, sa.select(refresh_tokens).where(refresh_tokens.c.id == sa.bindparam("token_id"))
        )
        since = sa.bindparam("since", type_=UTCDateTime)
        self._revocations_since = Lookup(
            reader,
            sa.select(revocations)
            .where(revocations.c.revoked_at >= since, revocations.c.expires_at > since)
            .order_by(revocations.c.revoked_at, revocations.c.kind, revocations.c.id),
        )

    def __repr__(self) -> str:
        return f"SQLStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def create_schema(self) -> None:
        """Create authmw's tables at the latest schema revision (idempotent).

        A new database gets every table at once (``metadata.create_all``) and is
        recorded at the head revision, so later migrations apply to it; an older
        one is upgraded (see :mod:`authmw.store.migrations`).
        """
        # Imported here: Alembic loads only in a process that creates a schema.
        from authmw.store import migrations  # noqa: PLC0415

        migrations.create_schema(self.engine)

    def close(self) -> None:
        """Dispose of the connection pools."""
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()

    # -- users -------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        password_hash: str | None,
        roles: frozenset[str],
        teams: frozenset[str],
    ) -> User:
        """Insert a user; :class:`~authmw.store.Conflict` if the name is taken."""
        now = _now()
        values = {
            "username": username,
            "password_hash": password_hash,
            "roles": _join(roles),
            "teams": _join(teams),
            "disabled": False,
            "credential_epoch": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(users.insert().values(values)).inserted_primary_key
        except IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        if new_id is None:  # pragma: no cover - every supported backend returns the key
            raise RuntimeError("the database did not return the new user's id")
        return _user({**values, "id": new_id[0]})

    def get_user(self, username: str) -> User | None:
        """Return the user named ``username``, or ``None``."""
        rows = self._get_user.rows({"username": username})
        return _user(rows[0]) if rows else None

    def list_users(self) -> Sequence[User]:
        """Return every user, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.username)).all()
        return [_user(r._mapping) for r in rows]

    def update_user(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        roles: frozenset[str] | None = None,
        teams: frozenset[str] | None = None,
        disabled: bool | None = None,
        bump_epoch: bool = False,
    ) -> User:
        """Update the given fields in one statement; :class:`~authmw.store.NotFound` if absent."""
        values: dict[str, Any] = {"updated_at": _now()}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if roles is not None:
            values["roles"] = _join(roles)
        if teams is not None:
            values["teams"] = _join(teams)
        if disabled is not None:
            values["disabled"] = disabled
        if bump_epoch:
            # Incremented in SQL, not read-modify-write, so concurrent bumps never collapse.
            values["credential_epoch"] = users.c.credential_epoch + 1
        with self.engine.begin() as conn:
            row = conn.execute(
                users.update()
                .where(users.c.username == username)
                .values(values)
                .returning(*_USER_COLUMNS)
            ).first()
        if row is None:
            raise NotFound(f"no user named {username!r}")
        return _user(row._mapping)

    # -- API keys ----------------------------------------------------------------

    def _owner_id(self, conn: sa.Connection, username: str | None) -> int | None:
        if username is None:
            return None
        owner_id = conn.execute(
            sa.select(users.c.id).where(users.c.username == username)
        ).scalar_one_or_none()
        if owner_id is None:
            raise NotFound(f"no user named {username!r}")
        return int(owner_id)

    def _insert_key(self, conn: sa.Connection, key: ApiKey) -> None:
        conn.execute(
            api_keys.insert().values(
                id=key.id,
                name=key.name,
                owner_id=self._owner_id(conn, key.owner),
                team=key.team,
                scopes=_join(key.scopes),
                secret_hash=key.secret_hash,
                created_at=key.created_at,
                expires_at=key.expires_at,
                revoked_at=key.revoked_at,
                last_used_at=key.last_used_at,
                replaced_by=key.replaced_by,
            )
        )

    def add_key(self, key: ApiKey) -> ApiKey:
        """Insert ``key``; :class:`~authmw.store.NotFound` if its owner does not exist."""
        try:
            with self.engine.begin() as conn:
                self._insert_key(conn, key)
        except IntegrityError:
            raise Conflict(f"key id {key.id!r} already exists") from None
        return key

    def find_key(self, key_id: str) -> KeyMatch | None:
        """Return the key and its owner through one primary-key lookup."""
        rows = self._find_key.rows({"key_id": key_id})
        if not rows:
            return None
        m = rows[0]
        owner = None
        if m["owner_id"] is not None:
            owner = _user({name: m[label] for name, label in _OWNER_LABELS})
        return KeyMatch(_key(m, owner.username if owner else None), owner)

    def _select_keys(self) -> sa.Select[Any]:
        return sa.select(api_keys, users.c.username.label("owner_username")).select_from(
            api_keys.outerjoin(users, api_keys.c.owner_id == users.c.id)
        )

    def get_key(self, key_id: str) -> ApiKey | None:
        """Return the key record, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(self._select_keys().where(api_keys.c.id == key_id)).first()
        return None if row is None else _key(row._mapping, row.owner_username)

    def list_keys(self, *, owner: str | None = None, team: str | None = None) -> Sequence[ApiKey]:
        """Return keys, newest first, optionally filtered by owner or team."""
        query = self._select_keys()
        if owner is not None:
            query = query.where(users.c.username == owner)
        if team is not None:
            query = query.where(api_keys.c.team == team)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(api_keys.c.created_at.desc(), api_keys.c.id)).all()
        return [_key(r._mapping, r.owner_username) for r in rows]

    def revoke_key(self, key_id: str, at: datetime) -> ApiKey:
        """Mark the key revoked; revoking twice keeps the first time."""
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        key = self.get_key(key_id)
        if key is None:
            raise NotFound(f"no key with id {key_id!r}")
        return key

    def rotate_key(self, key_id: str, successor: ApiKey, old_expires_at: datetime) -> ApiKey:
        """Add ``successor`` and shorten the old key's life, in one transaction.

        The update only matches a key that is neither revoked nor already rotated,
        so two concurrent rotations of one key cannot both succeed.
        """
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(api_keys.c.expires_at).where(
                    api_keys.c.id == key_id,
                    api_keys.c.revoked_at.is_(None),
                    api_keys.c.replaced_by.is_(None),
                )
            ).first()
            if current is None:
                if conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id)).first():
                    raise Conflict(f"key {key_id!r} is revoked or already rotated")
                raise NotFound(f"no key with id {key_id!r}")
            expires = current.expires_at
            new_expiry = old_expires_at if expires is None else min(expires, old_expires_at)
            self._insert_key(conn, successor)
            updated = conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.replaced_by.is_(None))
                .values(expires_at=new_expiry, replaced_by=successor.id)
            ).rowcount
            if updated != 1:
                raise Conflict(f"key {key_id!r} was rotated concurrently")
        return successor

    def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        """Write ``last_used_at`` for a batch of keys in one transaction."""
        if not last_used:
            return
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == sa.bindparam("key_id"))
                .values(last_used_at=sa.bindparam("used_at")),
                [{"key_id": k, "used_at": t} for k, t in last_used.items()],
            )

    # -- OAuth2 clients and apps ---------------------------------------------------------

    def add_client(self, client: Client) -> Client:
        """Insert a client or app; :class:`~authmw.store.Conflict` if the id exists."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    clients.insert().values(
                        id=client.id,
                        name=client.name,
                        kind=client.kind,
                        team=client.team,
                        scopes=_join(client.scopes),
                        roles=_join(client.roles),
                        redirect_uris=json.dumps(list(client.redirect_uris)),
                        public=client.public,
                        first_party=client.first_party,
                        disabled=client.disabled,
                        secret_hash=client.secret_hash,
                        previous_secret_hash=client.previous_secret_hash,
                        previous_secret_expires_at=client.previous_secret_expires_at,
                        created_at=client.created_at,
                        # Named only when set, as a new client's never is: the insert
                        # then also runs on a database at an earlier revision, where
                        # the migration tests write clients one revision at a time.
                        **(
                            {}
                            if client.reenabled_at is None
                            else {"reenabled_at": client.reenabled_at}
                        ),
                    )
                )
        except IntegrityError:
            raise Conflict(f"client id {client.id!r} already exists") from None
        return client

    def get_client(self, client_id: str) -> Client | None:
        """Return the client through one primary-key lookup, or ``None``."""
        rows = self._get_client.rows({"client_id": client_id})
        return _client(rows[0]) if rows else None

    def list_clients(self, *, kind: str | None = None) -> Sequence[Client]:
        """Return clients, optionally of one kind, by name and then id."""
        query = sa.select(clients)
        if kind is not None:
            query = query.where(clients.c.kind == kind)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(clients.c.name, clients.c.id)).all()
        return [_client(r._mapping) for r in rows]

    def update_client(
        self,
        client_id: str,
        *,
        disabled: bool | None = None,
        secret_hash: str | None = None,
        previous_secret_hash: str | None = None,
        previous_secret_expires_at: datetime | None = None,
        clear_previous: bool = False,
    ) -> Client:
        """Update the given fields in one statement; :class:`~authmw.store.NotFound` if absent."""
        if clear_previous and (
            previous_secret_hash is not None or previous_secret_expires_at is not None
        ):
            raise ValueError("clear_previous cannot be combined with a previous secret")
        values: dict[str, Any] = {}
        if disabled is not None:
            values["disabled"] = disabled
        if secret_hash is not None:
            values["secret_hash"] = secret_hash
        if previous_secret_hash is not None:
            values["previous_secret_hash"] = previous_secret_hash
        if previous_secret_expires_at is not None:
            values["previous_secret_expires_at"] = previous_secret_expires_at
        if clear_previous:
            values["previous_secret_hash"] = None
            values["previous_secret_expires_at"] = None
        with self.engine.begin() as conn:
            if values:
                row = conn.execute(
                    clients.update()
                    .where(clients.c.id == client_id)
                    .values(values)
                    .returning(*clients.c)
                ).first()
            else:
                row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).first()
        if row is None:
            raise NotFound(f"no client with id {client_id!r}")
        return _client(row._mapping)

    def reenable_client(self, client_id: str, at: datetime) -> Client:
        """Enable a disabled client and record ``at`` in one conditional update.

        See :meth:`authmw.store.Store.reenable_client`.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                clients.update()
                .where(clients.c.id == client_id, clients.c.disabled == sa.true())
                .values(disabled=False, reenabled_at=at)
                .returning(*clients.c)
            ).first()
            if row is None:
                row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).first()
        if row is None:
            raise NotFound(f"no client with id {client_id!r}")
        return _client(row._mapping)

    # -- refresh tokens ------------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> RefreshToken:
        """Insert a refresh token; :class:`~authmw.store.Conflict` if the id exists."""
        try:
            with self.engine.begin() as conn:
                conn.execute(refresh_tokens.insert(), _refresh_token_values(token))
        except IntegrityError:
            raise Conflict(f"refresh token id {token.id!r} already exists") from None
        return token

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        """Return the refresh token through one primary-key lookup, or ``None``."""
        rows = self._get_refresh_token.rows({"token_id": token_id})
        return _refresh_token(rows[0]) if rows else None

    def rotate_refresh_token(self, token_id: str, successor: RefreshToken, at: datetime) -> bool:
        """Consume the token and insert its successor in one transaction; ``False`` if it lost.

        The database decides the race, not a lock in this process: the conditional
        UPDATE is the first statement, so on SQLite it takes the write lock (other
        writers wait, then find ``used_at`` set), and on PostgreSQL a concurrent
        UPDATE of the row waits for this transaction and re-checks the condition
        (READ COMMITTED), matching nothing once this one committed. Exactly one
        caller changes the row; only that caller inserts a successor.
        """
        try:
            with self.engine.begin() as conn:
                changed = conn.execute(
                    refresh_tokens.update()
                    .where(
                        refresh_tokens.c.id == token_id,
                        refresh_tokens.c.used_at.is_(None),
                        refresh_tokens.c.revoked_at.is_(None),
                    )
                    .values(used_at=at)
                ).rowcount
                if changed != 1:
                    return False  # leaving the block commits an UPDATE that changed nothing
                conn.execute(refresh_tokens.insert(), _refresh_token_values(successor))
        except IntegrityError:
            # The successor's id was taken: the whole rotation rolled back.
            raise Conflict(f"refresh token id {successor.id!r} already exists") from None
        return True

    def revoke_refresh_family(self, family_id: str, at: datetime) -> int:
        """Revoke every token of the family not revoked yet; return how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    refresh_tokens.update()
                    .where(
                        refresh_tokens.c.family_id == family_id,
                        refresh_tokens.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=at)
                ).rowcount
            )

    def revoke_refresh_tokens(
        self, *, subject: str, client_id: str | None = None, at: datetime
    ) -> list[str]:
        """Revoke a subject's tokens not revoked yet; return the families touched, sorted."""
        conditions = [refresh_tokens.c.subject == subject, refresh_tokens.c.revoked_at.is_(None)]
        if client_id is not None:
            conditions.append(refresh_tokens.c.client_id == client_id)
        with self.engine.begin() as conn:
            families = conn.execute(
                refresh_tokens.update()
                .where(*conditions)
                .values(revoked_at=at)
                .returning(refresh_tokens.c.family_id)
            ).scalars()
            return sorted(set(families))

    # -- authorization codes ---------------------------------------------------------------

    def add_code(self, code: AuthorizationCode) -> AuthorizationCode:
        """Insert an authorization code; :class:`~authmw.store.Conflict` if the id exists."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    authorization_codes.insert().values(
                        id=code.id,
                        client_id=code.client_id,
                        subject=code.subject,
                        redirect_uri=code.redirect_uri,
                        scopes=_join(code.scopes),
                        code_challenge=code.code_challenge,
                        credential_epoch=code.credential_epoch,
                        secret_hash=code.secret_hash,
                        created_at=code.created_at,
                        expires_at=code.expires_at,
                        used_at=code.used_at,
                        family_id=code.family_id,
                    )
                )
        except IntegrityError:
            raise Conflict(f"authorization code id {code.id!r} already exists") from None
        return code

    def get_code(self, code_id: str) -> AuthorizationCode | None:
        """Return the code through one primary-key lookup, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(authorization_codes).where(authorization_codes.c.id == code_id)
            ).first()
        return None if row is None else _code(row._mapping)

    def consume_code(self, code_id: str, at: datetime) -> bool:
        """Set ``used_at`` if it is unset, in one conditional UPDATE; ``True`` iff this call did.

        The database decides the race, as for refresh-token rotation: on SQLite
        the UPDATE takes the write lock (other writers wait, then find ``used_at``
        set); on PostgreSQL a concurrent UPDATE of the row waits for this
        transaction and re-checks the condition (READ COMMITTED), matching nothing.
        """
        with self.engine.begin() as conn:
            changed = conn.execute(
                authorization_codes.update()
                .where(
                    authorization_codes.c.id == code_id,
                    authorization_codes.c.used_at.is_(None),
                )
                .values(used_at=at)
            ).rowcount
        return changed == 1

    def set_code_family(self, code_id: str, family_id: str) -> None:
        """Record the refresh family issued from the code.

        :class:`~authmw.store.NotFound` if there is no such code.
        """
        with self.engine.begin() as conn:
            changed = conn.execute(
                authorization_codes.update()
                .where(authorization_codes.c.id == code_id)
                .values(family_id=family_id)
            ).rowcount
        if changed != 1:
            raise NotFound(f"no authorization code with id {code_id!r}")

    def purge_codes(self, before: datetime) -> int:
        """Delete codes that expired before ``before``; return how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    authorization_codes.delete().where(authorization_codes.c.expires_at < before)
                ).rowcount
            )

    # -- consents --------------------------------------------------------------------------

    def get_consent(self, subject: str, client_id: str) -> Consent | None:
        """Return the consent through one primary-key lookup, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(consents).where(
                    consents.c.subject == subject, consents.c.client_id == client_id
                )
            ).first()
        return None if row is None else _consent(row._mapping)

    def save_consent(
        self, subject: str, client_id: str, scopes: frozenset[str], at: datetime
    ) -> Consent:
        """Insert a consent or add ``scopes`` to the existing one, in one transaction.

        ``INSERT ... ON CONFLICT DO UPDATE`` either inserts the row or locks the
        existing one (touching only ``updated_at``) and returns it; the union of
        its scopes and the new ones is then written under that lock. Concurrent
        saves of one consent therefore queue behind each other instead of failing
        on the primary key, and none loses the scopes another added.
        """
        values = {
            "subject": subject,
            "client_id": client_id,
            "scopes": _join(scopes),
            "created_at": at,
            "updated_at": at,
        }
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            insert: Any = postgresql.insert(consents)
        elif dialect == "sqlite":
            insert = sqlite.insert(consents)
        else:  # pragma: no cover - other backends: no portable upsert
            raise NotImplementedError(f"save_consent needs INSERT ... ON CONFLICT, not {dialect}")
        upsert = (
            insert.values(values)
            .on_conflict_do_update(
                index_elements=[consents.c.subject, consents.c.client_id],
                set_={"updated_at": insert.excluded.updated_at},
            )
            .returning(*consents.c)
        )
        with self.engine.begin() as conn:
            stored = _consent(conn.execute(upsert).one()._mapping)
            if scopes <= stored.scopes:
                return stored
            merged = stored.scopes | scopes
            conn.execute(
                consents.update()
                .where(consents.c.subject == subject, consents.c.client_id == client_id)
                .values(scopes=_join(merged))
            )
        return Consent(subject, client_id, merged, stored.created_at, stored.updated_at)

    def list_consents(
        self, *, subject: str | None = None, client_id: str | None = None
    ) -> Sequence[Consent]:
        """Return consents, optionally of one subject or one app, by subject and then client id."""
        query = sa.select(consents)
        if subject is not None:
            query = query.where(consents.c.subject == subject)
        if client_id is not None:
            query = query.where(consents.c.client_id == client_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(consents.c.subject, consents.c.client_id)).all()
        return [_consent(r._mapping) for r in rows]

    def delete_consent(self, subject: str, client_id: str) -> bool:
        """Delete the consent; ``True`` if there was one."""
        with self.engine.begin() as conn:
            deleted = conn.execute(
                consents.delete().where(
                    consents.c.subject == subject, consents.c.client_id == client_id
                )
            ).rowcount
        return deleted == 1

    # -- revocations ---------------------------------------------------------------------

    def add_revocation(self, revocation: Revocation) -> None:
        """Record a revocation; the same kind and id again is ignored (the first is kept)."""
        values = {
            "kind": revocation.kind,
            "id": revocation.id,
            "subject": revocation.subject,
            "expires_at": revocation.expires_at,
            "revoked_at": revocation.revoked_at,
        }
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            insert: Any = postgresql.insert(revocations).on_conflict_do_nothing()
        elif dialect == "sqlite":
            insert = sqlite.insert(revocations).on_conflict_do_nothing()
        else:  # pragma: no cover - other backends: a duplicate is an IntegrityError
            try:
                with self.engine.begin() as conn:
                    conn.execute(revocations.insert().values(values))
            except IntegrityError:
                pass
            return
        with self.engine.begin() as conn:
            conn.execute(insert.values(values))

    def revocations_since(self, since: datetime) -> Sequence[Revocation]:
        """Return revocations made at or after ``since`` that expire after it, oldest first."""
        rows = self._revocations_since.rows({"since": since})
        return [
            Revocation(
                id=r["id"],
                kind=r["kind"],
                subject=r["subject"],
                expires_at=r["expires_at"],
                revoked_at=r["revoked_at"],
            )
            for r in rows
        ]

    def purge_revocations(self, before: datetime) -> int:
        """Delete revocations that expired before ``before``; return how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(revocations.delete().where(revocations.c.expires_at < before)).rowcount
            )
