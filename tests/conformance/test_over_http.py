"""The scenario table once over real HTTP: ``authmw demo`` for each framework.

Each server seeds its own database, so each has its own keys: the requests use
that server's keys, and ``/me`` bodies are compared without ``credential_id``
(the per-server test checks it is the id of the key that server issued).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import World
from tests.conformance.scenarios import SCENARIOS, Scenario
from tests.conformance.support import FRAMEWORKS, check_row, disagreements, send


def _without_credential_id(data: Any) -> Any:
    if isinstance(data, dict) and "credential_id" in data:
        return {k: v for k, v in data.items() if k != "credential_id"}
    return data


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_server_answers_as_the_table_says(
    live: dict[str, World], framework: str, scenario: Scenario
) -> None:
    world = live[framework]
    reply = send(world.callers[framework], scenario, world.keys)
    check_row(reply, scenario, world.keys, world.key_ids)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_servers_answer_alike(live: dict[str, World], scenario: Scenario) -> None:
    replies = {name: send(w.callers[name], scenario, w.keys) for name, w in live.items()}
    assert list(replies) == list(FRAMEWORKS)
    assert disagreements(replies, normalize=_without_credential_id) == []
