"""Per-process cache of inference components, rebuilt only when a new version goes live.

The hot path asks `ModelCache.get(name, build)`; the cache compares version stamps (re-read from
MongoDB at most every `interval` seconds, see recommender.store.stamps) and only then looks up
the live version and rebuilds. A request therefore never loads a model and never waits on the
database for the check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from recommender.model_store import versions
from recommender.model_store.versions import NoModelError, StoredModel
from recommender.store import stamps

T = TypeVar("T")


class ModelCache:
    def __init__(self, interval: float = 2.0, follow_local_writes: bool = True):
        self.stamps = stamps.StampCache(interval, follow_local_writes)
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
        A build must not call `get` itself (the lock is not reentrant): read what it needs first.
        """
        names = (versions.stamp_name(name), *depends_on)
        key = tuple(self.stamps.get(stamp) for stamp in names)
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry[0] == key:
                return entry[1]
            try:
                component = build(versions.load(name))
            except NoModelError:
                component = None
            self._entries[name] = (key, component)
            return component

    def clear(self) -> None:
        self._entries.clear()
        self.stamps.invalidate()
