"""``settings.AUTHMW``: read once, lazily, and rebuilt when the setting changes.

=====================  ==========================================================
``AUTHENTICATOR``      an :class:`~authmw.Authenticator`, or the import path of one
                       or of a factory returning one
``DATABASE_URL``       without ``AUTHENTICATOR``: the database, as the CLI takes it
                       (default: ``AUTHMW_DATABASE_URL``, else the embedded SQLite)
``POLICY``             without ``AUTHENTICATOR``: a :class:`~authmw.Policy`, or the
                       import path of one or of a factory returning one
                       (default: ``AUTHMW_POLICY``, else the demo roles)
``REQUIRE_AUTH``       refuse anonymous requests on every path not public (default ``False``)
``PUBLIC_PATHS``       paths open without a credential when ``REQUIRE_AUTH`` is on;
                       a trailing ``*`` makes a prefix (``"/static/*"``)
=====================  ==========================================================

An import path is written either way, ``"mysite.auth.build"`` or
``"mysite.auth:build"``. A value that does not name what it should (no such
module or attribute, or an object of the wrong type) raises Django's
``ImproperlyConfigured``, naming the setting and the value.

The resolved settings are kept until Django's ``setting_changed`` signal names
``AUTHMW``, as ``override_settings`` and pytest-django's ``settings`` fixture
send it. Django expects settings not to change at run time otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from authmw._paths import PublicPaths
from authmw.authenticator import Authenticator
from authmw.config import IMPORT_PATH_FORMS, import_path, policy_at
from authmw.policy import Policy

__all__ = ["Config", "get_authenticator", "get_config"]

T = TypeVar("T")

_KEYS = frozenset({"AUTHENTICATOR", "DATABASE_URL", "POLICY", "REQUIRE_AUTH", "PUBLIC_PATHS"})


@dataclass(frozen=True, slots=True)
class Config:
    """``settings.AUTHMW`` resolved: the authenticator and the middleware's options."""

    authenticator: Authenticator
    require_auth: bool
    public_paths: PublicPaths
    #: Where the authenticator's database is, when the settings name it (for the command).
    database_url: str | None
    #: The policy's import path for the CLI (``module:attribute``, as ``AUTHMW_POLICY``).
    policy_spec: str | None
    #: Built here from ``DATABASE_URL`` (so closed here when replaced), not handed in.
    owned: bool


_lock = threading.Lock()
# Read on every request, so not compared with settings.AUTHMW each time: since
# Django 4.1 reading any attribute of ``settings`` runs Python code
# (LazyObject.__getattribute__), which cost the middleware as much as
# authenticating. The setting_changed signal empties this instead.
_cache: Config | None = None


def get_config() -> Config:
    """Return the resolved ``settings.AUTHMW``, building it on first use (thread-safe)."""
    global _cache  # noqa: PLW0603 - the one process-wide cache of a process-wide setting
    cached = _cache
    if cached is not None:
        return cached
    with _lock:
        if _cache is None:
            _cache = _build(getattr(settings, "AUTHMW", None))
        return _cache


def _forget(*, setting: str, **_kwargs: object) -> None:
    """``setting_changed`` receiver: drop the resolved ``AUTHMW``, closing what it built."""
    global _cache
    if setting != "AUTHMW":
        return
    with _lock:
        cached, _cache = _cache, None
    if cached is not None and cached.owned:
        cached.authenticator.close()


setting_changed.connect(_forget, dispatch_uid="authmw_django.conf")


def get_authenticator() -> Authenticator:
    """Return the authenticator of ``settings.AUTHMW`` (for views that manage accounts)."""
    return get_config().authenticator


def _build(source: object) -> Config:
    options: Mapping[str, Any] = {} if source is None else _check(source)
    policy, policy_spec = _load_policy(options.get("POLICY"))
    url = options.get("DATABASE_URL")
    spec = options.get("AUTHENTICATOR")
    owned = spec is None
    if spec is None:
        authenticator = Authenticator.from_env(url, policy=policy)
    else:
        authenticator = _load_authenticator(spec)
    try:
        public_paths = PublicPaths(options.get("PUBLIC_PATHS", ()))
    except ValueError as exc:
        raise ImproperlyConfigured(f"AUTHMW['PUBLIC_PATHS']: {exc}") from None
    return Config(
        authenticator=authenticator,
        require_auth=bool(options.get("REQUIRE_AUTH", False)),
        public_paths=public_paths,
        database_url=url,
        policy_spec=policy_spec,
        owned=owned,
    )


def _check(source: object) -> Mapping[str, Any]:
    if not isinstance(source, Mapping):
        raise ImproperlyConfigured("settings.AUTHMW must be a dict")
    unknown = set(source) - _KEYS
    if unknown:
        # A typo ("REQUIRE_AUTHENTICATION") must not silently leave routes open.
        raise ImproperlyConfigured(f"unknown AUTHMW setting(s): {', '.join(sorted(unknown))}")
    return source


def _improper(setting: str, value: object, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"AUTHMW[{setting!r}] = {value!r}: {problem}")


def _import(setting: str, spec: str) -> tuple[object, str]:
    """:func:`authmw.config.import_path`, raising Django's ``ImproperlyConfigured``."""
    return _improperly(import_path, setting, spec)


def _improperly(
    resolve: Callable[[str, str], tuple[T, str]], setting: str, spec: str
) -> tuple[T, str]:
    """Call a resolver of :mod:`authmw.config`; its ``ValueError`` is ``ImproperlyConfigured``."""
    try:
        return resolve(f"AUTHMW[{setting!r}]", spec)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from exc.__cause__


def _load_policy(value: object) -> tuple[Policy | None, str | None]:
    """Resolve ``POLICY``: the policy (``None``: the default), and its spec for the CLI."""
    if value is None or isinstance(value, Policy):
        return value, None
    if not isinstance(value, str):
        raise _improper("POLICY", value, f"expected an authmw Policy, or {IMPORT_PATH_FORMS}")
    # The resolver AUTHMW_POLICY goes through, so `manage.py authmw`, handed the
    # spec, loads the very policy the middleware uses.
    return _improperly(policy_at, "POLICY", value)


def _load_authenticator(spec: object) -> Authenticator:
    value = _import("AUTHENTICATOR", spec)[0] if isinstance(spec, str) else spec
    if callable(value) and not isinstance(value, Authenticator):
        value = value()
    if not isinstance(value, Authenticator):
        raise _improper(
            "AUTHENTICATOR",
            spec,
            f"{type(value).__name__}, not an authmw Authenticator (expected one, "
            f"a factory of one, or the import path of either, {IMPORT_PATH_FORMS})",
        )
    return value
