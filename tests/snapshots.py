"""Store snapshots: train a world once per module, give every test a fresh copy of it.

A test's `app` has its own empty store; `restore(snapshot)` copies a snapshot taken from another
app's store into it (every collection, GridFS included), so an expensive trained world is built
once and each test still starts from the same state whatever the previous test changed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from recommender.store import get_db, stamps


def take() -> dict[str, list[dict]]:
    """Every document of the current app's store, by collection."""
    db = get_db()
    return {name: list(db[name].find()) for name in db.list_collection_names()}


def restore(snapshot: dict[str, list[dict]]) -> None:
    """Copy `snapshot` into the current app's (empty) store; caches then see new versions."""
    db = get_db()
    for name, documents in snapshot.items():
        if documents:
            db[name].insert_many(copy.deepcopy(documents))
    stamps.bump(stamps.CATALOGUE)


@contextmanager
def own_app() -> Iterator[Flask]:
    """A test app with its own fresh store (for module-scoped fixtures that build a world)."""
    from tests.conftest import TEST_MONGODB_HOST, build_app, fresh_store

    with fresh_store(TEST_MONGODB_HOST) as overrides, build_app(overrides).app_context() as ctx:
        yield ctx.app
