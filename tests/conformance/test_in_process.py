"""The scenario table against the three demo apps in-process, on one shared authenticator.

For every row: each framework answers as the table says (status, ``error``,
the contract's challenge, no secret echoed), and the three answer alike: the
same status, the same ``WWW-Authenticate`` (or none), the same JSON for a
success and the same bytes for a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from authmw import Authenticator
from tests.conformance.scenarios import SCENARIOS, Scenario
from tests.conformance.support import FRAMEWORKS, World, check_row, disagreements, send


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_answers_as_the_table_says(in_process: World, framework: str, scenario: Scenario) -> None:
    reply = send(in_process.callers[framework], scenario, in_process.secrets)
    check_row(reply, scenario, in_process)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_frameworks_answer_alike(in_process: World, scenario: Scenario) -> None:
    replies = {
        name: send(call, scenario, in_process.secrets) for name, call in in_process.callers.items()
    }
    assert disagreements(replies) == []


def test_django_serves_the_shared_authenticator(
    in_process: World, shared_auth: Authenticator, django_context: Callable[[], Any]
) -> None:
    from authmw_django import get_authenticator  # noqa: PLC0415 - needs configured settings

    with django_context():
        assert get_authenticator() is shared_auth
