"""Experiment tests serve Marketplace requests: nothing is published to a databus."""

from __future__ import annotations

import pytest

from recommender.services.runtime import runtime


@pytest.fixture(autouse=True)
def no_databus(app, monkeypatch):
    monkeypatch.setattr(runtime(), "publish", None)
