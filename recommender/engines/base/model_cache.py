"""Per-process cache of inference components, rebuilt only when a new version goes live.

The hot path asks `ModelCache.get(name, build)`; the cache compares version stamps (re-read from
MongoDB at most every `interval` seconds, see recommender.stamps) and only then looks up the live
version and rebuilds. A request therefore never loads a model and never waits on the database
for the check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from recommender import stamps
from recommender.engines.base import model_store
from recommender.engines.base.model_store import NoModelError, StoredModel

T = TypeVar("T")


class ModelCache:
    def __init__(self, interval: float = 2.0):
        self.stamps = stamps.StampCache(interval)
        self._entries: dict[str, tuple[tuple, Any]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        build: Callable[[StoredModel], T],
        depends_on: Iterable[str] = (),
    ) -> T | None:
        """The component built from the live version of model `name`, or None when none is live.

        `depends_on` names other stamps (e.g. "catalogue") whose change also forces a rebuild.
        """
        names = (model_store.stamp_name(name), *depends_on)
        key = tuple(self.stamps.get(stamp) for stamp in names)
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry[0] == key:
                return entry[1]
            try:
                component = build(model_store.load(name))
            except NoModelError:
                component = None
            self._entries[name] = (key, component)
            return component

    def clear(self) -> None:
        self._entries.clear()
        self.stamps.invalidate()


_cache: ModelCache | None = None


def model_cache() -> ModelCache:
    """This process's cache (interval from MODEL_RELOAD_INTERVAL)."""
    global _cache
    if _cache is None:
        from flask import current_app

        _cache = ModelCache(current_app.config["MODEL_RELOAD_INTERVAL"])
    return _cache


def invalidate_local() -> None:
    """Make this process's cache re-read the stamps on its next `get` (after a local write)."""
    if _cache is not None:
        _cache.stamps.invalidate()


def reset_model_cache() -> None:
    """Forget every cached component and the interval (a new app may set another)."""
    global _cache
    _cache = None
