"""These tests are about loading dumps: the training chain is emptied unless a test sets one."""

from __future__ import annotations

import pytest

from tests.app_helpers import use_stages


@pytest.fixture(autouse=True)
def no_training(app, monkeypatch):
    use_stages(monkeypatch, {})
