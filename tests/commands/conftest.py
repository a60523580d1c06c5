"""Fixtures of the CLI tests: invoke a `flask` command on the test app."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args, **kwargs: runner.invoke(args=list(args), **kwargs)
