"""Serving tests never publish to a real databus: the app's publisher records instead."""

from __future__ import annotations

import pytest

from recommender.services.runtime import runtime


@pytest.fixture(autouse=True)
def published(app, monkeypatch) -> list[tuple[dict, dict]]:
    """(context, response) of every publication the tests' requests made."""
    calls: list[tuple[dict, dict]] = []
    monkeypatch.setattr(runtime(), "publish", lambda c, r: calls.append((c, r)))
    return calls
