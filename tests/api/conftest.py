"""Serving tests never publish to a real databus: the publishing seam records instead."""

from __future__ import annotations

import pytest

from recommender.services import recommendations


@pytest.fixture(autouse=True)
def published(monkeypatch) -> list[tuple[dict, dict]]:
    """(context, response) of every publication the tests' requests made."""
    calls: list[tuple[dict, dict]] = []
    monkeypatch.setattr(
        recommendations, "publish_recommendation", lambda c, r: calls.append((c, r))
    )
    return calls
