"""Schema migrations: every revision from 0001 to the head, on SQLite files and PostgreSQL.

Each PostgreSQL test works in a schema of its own (under the session's
database), so a version table or a half-migrated schema never leaks into
another test. ``SQLStore.create_schema`` takes a shortcut (``create_all``, then
record the head); these tests prove the shortcut and the migrations agree.
"""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result

import authmw
from authmw import Authenticator, InvalidToken, PasswordHasher, Settings
from authmw.cli import main
from authmw.credentials import Credential
from authmw.store import AuthorizationCode, RefreshToken, Revocation
from authmw.store import migrations as m
from authmw.store.sql import SQLStore, create_engine, metadata, users
from tests.core.conftest import sqlite_file_url

REVISIONS = ["0001", "0002", "0003", "0004"]
#: The revisions a release from before migrations could have left (by their tables).
UNVERSIONED = ["0001", "0002", "0003"]
#: The tables each revision adds, in the order of the history.
ADDED: dict[str, set[str]] = {
    "0001": {"authmw_users", "authmw_api_keys"},
    "0002": {"authmw_clients", "authmw_refresh_tokens", "authmw_revocations"},
    "0003": {"authmw_authorization_codes", "authmw_consents"},
    "0004": set(),  # a column: authmw_clients.reenabled_at
}
SECRET_KEY = "migrations-test-signing-key-0123456789"
PASSWORD = "correct horse battery staple"
CLEAN_ENV: dict[str, str | None] = {
    "AUTHMW_DATABASE_URL": None,
    "AUTHMW_SECRET_KEY": None,
    "AUTHMW_POLICY": None,
}
VERSION_NUM: sa.ColumnClause[str] = sa.column("version_num")
VERSION = sa.table(m.VERSION_TABLE, VERSION_NUM)
T0 = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)


@dataclass
class Database:
    """An empty database: its URL (what the CLI gets) and an engine made as authmw makes one."""

    url: str
    engine: sa.Engine
    schema: str | None = None  # PostgreSQL only


DatabaseFactory = Callable[[], Database]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Make empty databases on one backend: SQLite files, or fresh PostgreSQL schemas.

    A PostgreSQL URL carries ``search_path`` in its query, so the CLI, authmw's
    engines and Alembic (its version table included) all work in that schema.
    """
    made: list[Database] = []
    admin: sa.Engine | None = None
    base_url = ""
    if request.param == "postgres":
        base_url, _ = request.getfixturevalue("postgres_schema")
        admin = sa.create_engine(base_url)

    def make() -> Database:
        if admin is None:
            directory = tmp_path / f"db{len(made)}"
            directory.mkdir()
            url = sqlite_file_url(directory)
            db = Database(url, create_engine(url))
        else:
            schema = f"authmw_mig_{uuid.uuid4().hex[:12]}"
            with admin.begin() as conn:
                conn.execute(sa.schema.CreateSchema(schema))
            parsed = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
            url = parsed.render_as_string(hide_password=False)
            db = Database(url, create_engine(url), schema)
        made.append(db)
        return db

    yield make
    for db in made:
        db.engine.dispose()
    if admin is not None:
        with admin.begin() as conn:
            for db in made:
                if db.schema is not None:
                    conn.execute(sa.schema.DropSchema(db.schema, cascade=True))
        admin.dispose()


@pytest.fixture
def db(databases: DatabaseFactory) -> Database:
    return databases()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def authmw_tables(engine: sa.Engine) -> set[str]:
    return {t for t in table_names(engine) if m.include_name(t, "table", None)}


def describe(engine: sa.Engine) -> dict[str, Any]:
    """Every authmw table as the database reports it: columns, keys, indexes, constraints."""
    inspector = sa.inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(authmw_tables(engine)):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return out


def differences(engine: sa.Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``metadata``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": m.include_name, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))


def all_rows(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every authmw table, as stored, in primary-key order."""
    reflected = sa.MetaData()
    reflected.reflect(engine, only=lambda name, _: m.include_name(name, "table", None))
    with engine.connect() as conn:
        return {
            table.name: [
                dict(row._mapping)
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in reflected.sorted_tables
        }


def create_legacy(engine: sa.Engine, revision: str) -> None:
    """Make a database the way a release from before migrations did: create_all, no version."""
    assert revision in UNVERSIONED
    wanted = set().union(*(ADDED[r] for r in REVISIONS[: REVISIONS.index(revision) + 1]))
    metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t.name in wanted])
    if "authmw_clients" in wanted:
        # Those releases' clients table had no reenabled_at (revision 0004 adds it).
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE authmw_clients DROP COLUMN reenabled_at"))


def authenticator(engine: sa.Engine, hasher: PasswordHasher) -> Authenticator:
    return Authenticator(
        SQLStore(engine), settings=Settings(secret_keys=(SECRET_KEY,)), passwords=hasher
    )


# -- the history ----------------------------------------------------------------------------


def test_revisions_form_one_line_from_0001_to_the_head() -> None:
    scripts = ScriptDirectory(str(m.MIGRATIONS_DIR))
    history = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert history == REVISIONS
    assert scripts.get_heads() == [REVISIONS[-1]]
    assert m.head() == REVISIONS[-1]
    for script in scripts.walk_revisions():
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_")


def test_the_migrations_ship_inside_the_installed_package() -> None:
    package = Path(authmw.__file__).resolve().parent
    assert package / "migrations" == m.MIGRATIONS_DIR
    assert (m.MIGRATIONS_DIR / "env.py").is_file()
    assert (m.MIGRATIONS_DIR / "script.py.mako").is_file()
    files = sorted((m.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert [f.name[:4] for f in files] == REVISIONS
    previous = None
    for path in files:
        spec = importlib.util.spec_from_file_location(f"authmw_revision_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.revision == path.name[:4]
        assert module.down_revision == previous
        assert callable(module.upgrade)
        assert callable(module.downgrade)
        previous = module.revision


def test_the_wheel_build_keeps_the_migrations() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("no pyproject.toml beside the tests (an installed test tree)")
    wheel = tomllib.loads(pyproject.read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "authmw" in wheel["packages"]
    excluded = " ".join([*wheel.get("exclude", []), *wheel.get("only-include", [])])
    assert "migrations" not in excluded
    assert "mako" not in excluded


def test_current_and_head(db: Database) -> None:
    assert m.head() == "0004"
    assert m.current(db.engine) is None
    assert m.current(db.url) is None  # a URL works as well as an engine
    m.upgrade(db.engine, "0001")
    assert m.current(db.engine) == "0001"
    m.upgrade(db.url, "0002")
    assert m.current(db.url) == "0002"
    m.upgrade(db.engine)
    assert m.current(db.engine) == m.head()
    m.upgrade(db.engine)  # already there: nothing happens
    assert m.current(db.engine) == m.head()


def test_version_table_is_authmw_s_own_and_in_the_database_s_schema(db: Database) -> None:
    m.upgrade(db.engine)
    assert m.VERSION_TABLE in table_names(db.engine)
    assert "alembic_version" not in table_names(db.engine)
    if db.schema is not None:
        with db.engine.connect() as conn:
            schemas = conn.execute(
                sa.text("SELECT table_schema FROM information_schema.tables WHERE table_name = :t"),
                {"t": m.VERSION_TABLE},
            ).scalars()
            found = set(schemas)  # other tests' schemas hold theirs; never public
        assert db.schema in found
        assert "public" not in found


# -- upgrade makes what create_all makes ----------------------------------------------------------


def test_upgrade_to_head_makes_the_schema_create_all_makes(databases: DatabaseFactory) -> None:
    migrated, created = databases(), databases()
    m.upgrade(migrated.engine)
    metadata.create_all(created.engine)
    assert differences(migrated.engine) == []
    assert describe(migrated.engine) == describe(created.engine)
    assert set(describe(migrated.engine)) == set(metadata.tables)


def test_the_comparison_sees_a_missing_index(db: Database) -> None:
    # So an empty difference above means something.
    m.upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_authmw_consents_client_id"))
    found = differences(db.engine)
    assert [d[0] for d in found] == ["add_index"]
    assert found[0][1].name == "ix_authmw_consents_client_id"


def test_create_schema_records_the_head(databases: DatabaseFactory) -> None:
    fast, slow = databases(), databases()
    store = SQLStore(fast.engine)
    store.create_schema()
    assert m.current(fast.engine) == m.head()
    m.upgrade(slow.engine)
    assert describe(fast.engine) == describe(slow.engine)
    store.create_schema()  # idempotent, and upgrading it is a no-op
    m.upgrade(fast.engine)
    assert m.current(fast.engine) == m.head()


def test_create_schema_recreates_tables_dropped_behind_the_version_table(db: Database) -> None:
    # What the PostgreSQL test fixtures do between tests: drop_all leaves the version table.
    store = SQLStore(db.engine)
    store.create_schema()
    metadata.drop_all(db.engine)
    store.create_schema()
    assert authmw_tables(db.engine) == set(metadata.tables)
    assert m.current(db.engine) == m.head()


def test_downgrade_to_base_and_back(db: Database) -> None:
    m.upgrade(db.engine)
    with db.engine.begin() as conn:
        config = m.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert authmw_tables(db.engine) == set()
    assert m.current(db.engine) is None
    m.upgrade(db.engine)
    assert differences(db.engine) == []


def test_offline_mode_writes_the_ddl_as_sql() -> None:
    config = m.alembic_config("postgresql+psycopg://")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    script = config.output_buffer.getvalue()
    for table in (*metadata.tables, m.VERSION_TABLE):
        assert f"CREATE TABLE {table} (" in script
    assert "CREATE INDEX ix_authmw_api_keys_owner_id" in script
    assert "ALTER TABLE authmw_clients ADD COLUMN reenabled_at TIMESTAMP WITH TIME ZONE" in script
    assert "UPDATE authmw_alembic_version SET version_num='0004'" in script


# -- data survives every step ---------------------------------------------------------------------


def test_step_by_step_upgrade_keeps_every_row(db: Database, hasher: PasswordHasher) -> None:
    # 0001: users with roles and teams, personal, team, restricted and revoked keys.
    m.upgrade(db.engine, "0001")
    assert authmw_tables(db.engine) == ADDED["0001"]
    auth = authenticator(db.engine, hasher)
    auth.users.create("alice", password=PASSWORD, roles={"admin"}, teams={"north", "south"})
    auth.users.create("bob", password=PASSWORD, roles={"employee"}, teams={"north"})
    personal = auth.keys.create(name="laptop", owner="alice")
    team = auth.keys.create(
        name="etl", team="north", scopes={"appointments:read"}, expires_in=timedelta(days=30)
    )
    revoked = auth.keys.create(name="old", team="south")
    auth.keys.revoke(revoked.record.id)
    store = auth.store
    at_0001 = all_rows(db.engine)
    assert len(at_0001["authmw_users"]) == 2
    assert len(at_0001["authmw_api_keys"]) == 3

    # 0002: clients and apps, refresh tokens, revocations.
    m.upgrade(db.engine, "0002")
    assert m.current(db.engine) == "0002"
    assert authmw_tables(db.engine) == ADDED["0001"] | ADDED["0002"]
    assert {t: all_rows(db.engine)[t] for t in at_0001} == at_0001
    client = auth.clients.create_client("reporting", team="north", scopes={"reports:read"})
    app = auth.clients.create_app(
        "partner", redirect_uris=["https://partner.example/cb"], scopes={"appointments:read"}
    )
    refresh = RefreshToken(
        id="rt0000000001",
        family_id="rt0000000001",
        client_id=app.client.id,
        subject="alice",
        kind="delegated",
        scopes=frozenset({"appointments:read"}),
        credential_epoch=0,
        created_at=T0,
        expires_at=T0 + timedelta(days=30),
        idle_expires_at=T0 + timedelta(days=7),
        secret_hash="ab" * 32,
    )
    store.add_refresh_token(refresh)
    revocation = Revocation(
        id="jti-0001",
        kind="token",
        subject="bob",
        expires_at=T0 + timedelta(minutes=15),
        revoked_at=T0,
    )
    store.add_revocation(revocation)
    at_0002 = all_rows(db.engine)

    # 0003: authorization codes and consents.
    m.upgrade(db.engine, "0003")
    assert m.current(db.engine) == "0003"
    assert {t: all_rows(db.engine)[t] for t in at_0002} == at_0002
    code = AuthorizationCode(
        id="ac0000000001",
        client_id=app.client.id,
        subject="alice",
        redirect_uri="https://partner.example/cb",
        scopes=frozenset({"appointments:read"}),
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        created_at=T0,
        expires_at=T0 + timedelta(minutes=1),
        credential_epoch=0,
        secret_hash="cd" * 32,
    )
    store.add_code(code)
    consent = store.save_consent("alice", app.client.id, frozenset({"appointments:read"}), T0)
    at_0003 = all_rows(db.engine)
    assert all(at_0003[t] for t in metadata.tables), "every table holds a row"

    # 0004: when each client was last enabled again after a disable; none of these was.
    m.upgrade(db.engine, "0004")
    assert m.current(db.engine) == "0004"
    at_0004 = {
        **at_0003,
        "authmw_clients": [{**row, "reenabled_at": None} for row in at_0003["authmw_clients"]],
    }
    assert all_rows(db.engine) == at_0004

    # The head (today 0004; a later revision must keep all of this too).
    m.upgrade(db.engine)
    assert m.current(db.engine) == m.head()
    assert {t: all_rows(db.engine)[t] for t in at_0004} == at_0004
    auth.close()

    # The records read back equal, through a fresh authenticator on the upgraded database.
    fresh = authenticator(create_engine(db.url), hasher)
    try:
        assert fresh.store.get_user("alice") == store.get_user("alice")
        assert {u.username for u in fresh.users.list()} == {"alice", "bob"}
        assert fresh.store.get_key(team.record.id) == team.record
        assert fresh.store.get_client(client.client.id) == client.client
        assert fresh.store.get_client(app.client.id) == app.client
        assert fresh.store.get_refresh_token(refresh.id) == refresh
        assert fresh.store.get_code(code.id) == code
        assert fresh.store.get_consent("alice", app.client.id) == consent
        assert revocation in fresh.store.revocations_since(T0 - timedelta(seconds=1))

        # The API keys made at 0001 still verify (or stay revoked).
        principal = fresh.authenticate(Credential("apikey", personal.key))
        assert principal is not None
        assert (principal.kind, principal.subject) == ("api_key", "alice")
        assert principal.credential_id == personal.record.id
        principal = fresh.authenticate(Credential("bearer", team.key))
        assert principal is not None
        assert (principal.team, principal.scopes) == ("north", frozenset({"appointments:read"}))
        with pytest.raises(InvalidToken):
            fresh.authenticate(Credential("apikey", revoked.key))
    finally:
        fresh.close()


# -- databases made before migrations -------------------------------------------------------------


@pytest.mark.parametrize("revision", UNVERSIONED)
def test_a_database_from_before_migrations_is_recognised_and_upgraded(
    db: Database, hasher: PasswordHasher, revision: str
) -> None:
    create_legacy(db.engine, revision)
    auth = authenticator(db.engine, hasher)
    auth.users.create("alice", password=PASSWORD, roles={"admin"})
    issued = auth.keys.create(name="laptop", owner="alice")
    auth.close()
    before = all_rows(db.engine)
    assert m.VERSION_TABLE not in table_names(db.engine)
    assert m.current(db.engine) == revision  # recognised by its tables

    m.upgrade(db.engine)
    assert m.current(db.engine) == m.head()
    with db.engine.connect() as conn:
        recorded = conn.execute(sa.select(VERSION_NUM).select_from(VERSION)).all()
    assert recorded == [(m.head(),)]
    assert differences(db.engine) == []
    after = all_rows(db.engine)
    assert {t: after[t] for t in before} == before
    fresh = authenticator(db.engine, hasher)
    try:
        principal = fresh.authenticate(Credential("apikey", issued.key))
        assert principal is not None
        assert principal.subject == "alice"
    finally:
        fresh.close()


def test_create_schema_upgrades_a_database_from_before_migrations(db: Database) -> None:
    create_legacy(db.engine, "0001")
    with db.engine.begin() as conn:
        conn.execute(
            users.insert().values(
                username="alice",
                roles="admin",
                teams="",
                disabled=False,
                credential_epoch=3,
                created_at=T0,
                updated_at=T0,
            )
        )
    SQLStore(db.engine).create_schema()
    assert m.current(db.engine) == m.head()
    assert differences(db.engine) == []
    alice = SQLStore(db.engine).get_user("alice")
    assert alice is not None
    assert alice.credential_epoch == 3


def test_create_schema_upgrades_an_older_revision(db: Database) -> None:
    m.upgrade(db.engine, "0002")
    SQLStore(db.engine).create_schema()
    assert m.current(db.engine) == m.head()
    assert differences(db.engine) == []


def test_tables_that_match_no_revision_are_refused(db: Database) -> None:
    metadata.create_all(db.engine, tables=[users])  # users without keys: never a release
    with pytest.raises(m.MigrationError, match="match no revision"):
        m.current(db.engine)
    with pytest.raises(m.MigrationError, match="authmw_users"):
        m.upgrade(db.engine)
    assert m.VERSION_TABLE not in table_names(db.engine)


def test_the_application_s_own_tables_and_alembic_history_are_left_alone(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)"))
        conn.execute(sa.text("INSERT INTO orders (id, total) VALUES (1, 42)"))
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('app0007')"))
    create_legacy(db.engine, "0001")
    assert m.current(db.engine) == "0001"
    m.upgrade(db.engine)
    assert m.current(db.engine) == m.head()
    assert differences(db.engine) == []
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, total FROM orders")).all() == [(1, 42)]
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("app0007",)
        ]


# -- failures and concurrency -----------------------------------------------------------------


def test_a_failed_migration_leaves_the_database_as_it_was(db: Database) -> None:
    m.upgrade(db.engine, "0002")
    before = describe(db.engine)
    with db.engine.begin() as conn:
        # 0003 creates authmw_authorization_codes, then this index name: it fails half-way.
        conn.execute(sa.text("CREATE TABLE squatter (client_id INTEGER)"))
        conn.execute(sa.text("CREATE INDEX ix_authmw_consents_client_id ON squatter (client_id)"))
    with pytest.raises(sa.exc.DatabaseError):
        m.upgrade(db.engine)
    assert m.current(db.engine) == "0002"
    assert describe(db.engine) == before
    assert "authmw_authorization_codes" not in table_names(db.engine)
    with db.engine.connect() as conn:
        # The connection went back to the pool with foreign keys enforced again.
        if db.engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_instances_starting_together_create_the_schema_once(db: Database) -> None:
    stores = [SQLStore(db.url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(store: SQLStore) -> None:
        barrier.wait()
        try:
            store.create_schema()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert m.current(db.engine) == m.head()
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(VERSION)).scalar() == 1


# -- the command line -----------------------------------------------------------------------------


def run(db: Database, *args: str, **env: str) -> Result:
    result = CliRunner().invoke(main, ["--db", db.url, *args], env={**CLEAN_ENV, **env})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_json(db: Database, *args: str) -> Any:
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fails(db: Database, *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_cli_db_current_and_upgrade(db: Database) -> None:
    create_legacy(db.engine, "0001")
    shown = sa.make_url(db.url).render_as_string(hide_password=True)
    assert run_json(db, "db", "current") == {
        "database": shown,
        "current": "0001",
        "head": "0004",
        "upgrade_pending": True,
    }
    text = run(db, "db", "current").output
    assert "Schema revision 0001; the latest is 0004: run `authmw db upgrade`" in text

    assert run_json(db, "db", "upgrade", "--revision", "0002") == {
        "database": shown,
        "current": "0002",
        "previous": "0001",
        "head": "0004",
        "upgrade_pending": True,
    }
    upgraded = run(db, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "Schema upgraded from revision 0002 to 0004" in upgraded.output
    assert run_json(db, "db", "current") == {
        "database": shown,
        "current": "0004",
        "head": "0004",
        "upgrade_pending": False,
    }
    assert "Schema revision 0004 (the latest)" in run(db, "db", "current").output
    again = run_json(db, "db", "upgrade")
    assert (again["previous"], again["current"], again["upgrade_pending"]) == (
        "0004",
        "0004",
        False,
    )
    assert "nothing to upgrade" in run(db, "db", "upgrade").output
    assert differences(db.engine) == []


def test_cli_db_upgrade_of_an_empty_database(db: Database) -> None:
    with db.engine.connect():
        pass  # SQLite: the file now exists (the CLI refuses a missing one), empty
    assert run_json(db, "db", "current")["current"] is None
    assert "No authmw tables yet" in run(db, "db", "current").output
    out = run_json(db, "db", "upgrade")
    assert (out["previous"], out["current"]) == (None, "0004")
    assert differences(db.engine) == []


def test_cli_init_upgrades_an_old_database(db: Database, hasher: PasswordHasher) -> None:
    create_legacy(db.engine, "0001")
    auth = authenticator(db.engine, hasher)
    auth.users.create("alice", password=PASSWORD, roles={"admin"})
    auth.close()
    result = run(db, "init", AUTHMW_SECRET_KEY="k1" * 16)
    assert result.exit_code == 0, result.output
    assert "Schema upgraded from revision 0001 to 0004" in result.output
    assert m.current(db.engine) == m.head()
    assert [u["username"] for u in run_json(db, "users", "list")] == ["alice"]
    assert "Schema upgraded" not in run(db, "init", AUTHMW_SECRET_KEY="k1" * 16).output


def test_cli_db_errors(db: Database, tmp_path: Path) -> None:
    m.upgrade(db.engine, "0001")
    assert "nosuch" in fails(db, "db", "upgrade", "--revision", "nosuch")
    assert m.current(db.engine) == "0001"
    m.upgrade(db.engine)
    older = run(db, "db", "upgrade", "--revision", "0001")  # upgrade never goes back
    assert older.exit_code == 0, older.output
    assert "Schema revision 0004: nothing to upgrade" in older.output
    assert m.current(db.engine) == "0004"
    missing = Database(f"sqlite:///{tmp_path / 'missing.db'}", db.engine)
    assert "authmw init" in fails(missing, "db", "current")
    assert not (tmp_path / "missing.db").exists()


def test_cli_db_refuses_tables_it_did_not_make(db: Database) -> None:
    metadata.create_all(db.engine, tables=[users])
    assert "match no revision" in fails(db, "db", "current")
    assert "match no revision" in fails(db, "db", "upgrade")
