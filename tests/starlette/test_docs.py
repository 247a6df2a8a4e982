"""docs/starlette.md: the code on the page does what the page says, taken from the page itself.

* the "Test it" file passes under pytest beside the page's ``myapp.py``, run as a
  user runs it: in a directory of its own, in a process of its own;
* the page's app (its "Configure" file with the "Protect a route" snippets
  added) answers its routes over the database the page makes;
* every path operation on the page returns a value.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authmw import Authenticator
from authmw.store.sql import SQLStore
from tests.doc_pages import (
    Page,
    load_module,
    python_blocks,
    routed_functions,
    run_pytest_as_a_user,
)

PAGE = Page("starlette.md")


def write_myapp(directory: Path) -> Path:
    """Write the page's ``myapp.py``: the Configure file, then the routes of "Protect a route"."""
    (configure,) = python_blocks(PAGE.section("Configure"))
    protect = python_blocks(PAGE.section("Protect a route"))
    assert len(protect) == 2  # dependencies, then decorators
    source = directory / "myapp.py"
    source.write_text("\n\n".join([configure, *protect]), encoding="utf-8")
    return source


def test_the_test_it_file_passes_under_pytest(tmp_path: Path) -> None:
    write_myapp(tmp_path)
    (code,) = python_blocks(PAGE.section("Test it"))
    (tmp_path / "test_myapp.py").write_text(code, encoding="utf-8")
    result = run_pytest_as_a_user(tmp_path, "test_myapp.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.anyio
async def test_the_pages_app_answers_its_routes(tmp_path: Path) -> None:
    myapp = load_module(write_myapp(tmp_path))
    # What `authmw init`, `users create` and `keys create` do on the page.
    auth = Authenticator(SQLStore(f"sqlite:///{tmp_path / 'authmw.db'}"))
    try:
        auth.store.create_schema()
        auth.users.create("alice", password="a long passphrase", roles=["admin"])
        headers = {"X-API-Key": auth.keys.create(name="dev", owner="alice").key}
        transport = httpx.ASGITransport(app=myapp.create_app(auth))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/reports")).status_code == 401
            for path in ("/reports", "/me", "/revenue", "/appointments", "/teams/blue/usage"):
                response = await client.get(path, headers=headers)
                assert response.status_code == 200, path
                assert isinstance(response.json(), dict), path
            saved = await client.post("/admin/settings", headers=headers)
            assert saved.json() == {"saved": True}
    finally:
        auth.close()


def test_every_path_operation_on_the_page_returns_a_value() -> None:
    routed = routed_functions(PAGE.text)
    assert len(routed) >= 6
    assert [name for name, returns in routed if not returns] == []
