"""Request paths: the route an ASGI scope names, and the public-path list of ``require_auth``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PublicPaths", "route_path"]


def route_path(scope: Mapping[str, Any]) -> str:
    """Return the path the app's router matches: ``scope["path"]`` without ``root_path``."""
    # Under a root path (an app served at "/api" by a proxy), the ASGI path carries
    # the prefix and the router matches what follows it; public paths and authmw's
    # endpoints name routes. Stripped the way Starlette's router does
    # (``starlette._utils.get_route_path``).
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


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
