"""The scenario table once over real HTTP: ``authmw demo`` for each framework.

Each server seeds its own database and issues its own tokens, so each has its
own keys, clients and tokens: the requests use that server's credentials, and
``/me`` bodies are compared with each server's ids (of keys, tokens and
clients) replaced by their labels. The per-server test checks they are the ids
of what that server issued.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.conformance.scenarios import SCENARIOS, Scenario
from tests.conformance.support import FRAMEWORKS, World, check_row, disagreements, send


def _labelled(worlds: Mapping[str, World]) -> Callable[[Any], Any]:
    """A normalizer that replaces every world's own ids in a ``/me`` body by ``<label>``."""
    aliases = {
        value: f"<{label}>"
        for world in worlds.values()
        for ids in (world.ids, world.clients)
        for label, value in ids.items()
    }

    def normalize(data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: aliases.get(v, v) if isinstance(v, str) else v for k, v in data.items()}

    return normalize


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_server_answers_as_the_table_says(
    live: dict[str, World], framework: str, scenario: Scenario
) -> None:
    world = live[framework]
    reply = send(world.callers[framework], scenario, world.secrets)
    check_row(reply, scenario, world)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_servers_answer_alike(live: dict[str, World], scenario: Scenario) -> None:
    replies = {name: send(w.callers[name], scenario, w.secrets) for name, w in live.items()}
    assert list(replies) == list(FRAMEWORKS)
    assert disagreements(replies, normalize=_labelled(live)) == []
