"""``manage.py authmw ...``: authmw's own command line, on the database of ``settings.AUTHMW``.

Every argument goes unchanged to :func:`authmw.cli.main`, so the commands,
options, output and exit codes are the CLI's (``manage.py authmw keys list``,
``manage.py authmw users create ann --role employee --password-stdin``), with
``--db`` taken from the settings:

* ``AUTHMW["DATABASE_URL"]`` when set;
* else the database of ``AUTHMW["AUTHENTICATOR"]``, when it is a SQL store on a
  file or a server (an in-memory one is refused: no other connection sees it);
* else the CLI's own default, ``AUTHMW_DATABASE_URL`` or ``sqlite:///authmw.db``,
  which is also what the middleware then uses.

The commands check ``--role`` and ``--scope`` against the policy of the
configured authenticator, however it was given (``POLICY`` as a Policy or an
import path, or ``AUTHENTICATOR``). A ``POLICY`` import path also reaches the
CLI as ``AUTHMW_POLICY`` (``module:attribute``), for processes it starts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from typing import Any

import click
import sqlalchemy as sa
from django.core.management.base import BaseCommand, CommandError

from authmw.authenticator import Authenticator
from authmw.cli import main
from authmw_django.conf import get_config

__all__ = ["Command"]

# Options ManagementUtility has already applied, wherever they appear.
_DJANGO_OPTIONS = ("--settings", "--pythonpath")


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type information
    """Forward to ``authmw`` with the configured database."""

    help = "authmw's command line (users, keys, init) on the database of settings.AUTHMW."
    requires_system_checks: Sequence[str] = []

    def add_arguments(self, parser: Any) -> None:
        """Take every argument as is, for ``call_command("authmw", "keys", "list")``."""
        parser.add_argument("--db", metavar="URL", help="Another database than the settings'.")
        parser.add_argument("args", nargs=argparse.REMAINDER, help="authmw arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py authmw ARGS``: let click parse ARGS, print help and pick the exit code."""
        args = _without_django_options(argv[2:])
        config = get_config()
        with _policy_env(config.policy_spec):
            main.main(
                args=[*_db_args(args), *args],
                prog_name=f"{os.path.basename(argv[0])} authmw",
                obj=config.authenticator.policy,
            )

    def handle(self, *args: str, **options: Any) -> None:
        """Run from ``call_command``: output to ``self.stdout``, failures as ``CommandError``."""
        if options.get("db"):
            args = ("--db", options["db"], *args)
        config = get_config()
        with _policy_env(config.policy_spec), redirect_stdout(self.stdout):
            try:
                main.main(
                    args=[*_db_args(args), *args],
                    prog_name="authmw",
                    standalone_mode=False,
                    obj=config.authenticator.policy,
                )
            except click.exceptions.Exit as exc:
                if exc.exit_code:
                    raise CommandError(
                        f"exit code {exc.exit_code}", returncode=exc.exit_code
                    ) from None
            except click.ClickException as exc:
                raise CommandError(exc.format_message(), returncode=exc.exit_code) from None
            except click.Abort:
                raise CommandError("Aborted!") from None


def _db_args(args: Sequence[str]) -> list[str]:
    if args and args[0].startswith("--db"):
        return []  # named on the command line: that one
    config = get_config()
    if config.database_url is not None:
        return ["--db", config.database_url]
    if config.owned:
        return []  # built from the CLI's own default: the CLI finds the same database
    url = _store_url(config.authenticator)
    if url is None:
        raise CommandError(
            "the AUTHMW authenticator's database cannot be opened a second time "
            "(in memory, or not a SQL store): set AUTHMW['DATABASE_URL'] for this command"
        )
    return ["--db", url]


def _store_url(auth: Authenticator) -> str | None:
    engine = getattr(auth.store, "engine", None)
    if not isinstance(engine, sa.Engine):
        return None
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _without_django_options(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _DJANGO_OPTIONS:
            skip = True  # its value follows
        elif not arg.startswith(tuple(f"{o}=" for o in _DJANGO_OPTIONS)):
            out.append(arg)
    return out


@contextmanager
def _policy_env(spec: str | None) -> Iterator[None]:
    if spec is None:
        yield
        return
    before = os.environ.get("AUTHMW_POLICY")
    os.environ["AUTHMW_POLICY"] = spec
    try:
        yield
    finally:
        if before is None:
            del os.environ["AUTHMW_POLICY"]
        else:
            os.environ["AUTHMW_POLICY"] = before
