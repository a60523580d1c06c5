"""These tests are about loading dumps: the training chain is emptied unless a test sets one."""

from __future__ import annotations

import pytest

from recommender.engines import chain


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    monkeypatch.setattr(chain, "TRAINING_CHAIN", [])
