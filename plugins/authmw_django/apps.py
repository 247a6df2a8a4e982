"""The Django app: add ``"authmw_django"`` to ``INSTALLED_APPS`` for the ``authmw`` command."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["AuthmwConfig"]


class AuthmwConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    """authmw has no Django models: its store is its own (SQLAlchemy)."""

    name = "authmw_django"
    label = "authmw"
    verbose_name = "authmw"
