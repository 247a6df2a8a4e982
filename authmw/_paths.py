"""Matching request paths against the public-path list of ``require_auth=True``."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PublicPaths"]


class PublicPaths:
    """Exact paths, plus prefixes written with a trailing ``*`` (``"/docs*"``)."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, paths: Iterable[str]) -> None:
        items = list(paths)
        for path in items:
            if not path.startswith("/"):
                raise ValueError(f"public path {path!r} must start with '/'")
        self._exact = frozenset(p for p in items if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self._exact or path.startswith(self._prefixes))
