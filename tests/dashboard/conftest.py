"""Dashboard tests never publish to a real databus."""

from __future__ import annotations

import pytest

from recommender.services.runtime import runtime


@pytest.fixture(autouse=True)
def no_publishing(app, monkeypatch) -> None:
    monkeypatch.setattr(runtime(), "publish", None)
