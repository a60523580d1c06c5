"""Per-process cache of inference components, rebuilt only when a new version goes live.

The hot path asks `ModelCache.get(name, build)`; the cache compares version stamps (re-read from
MongoDB at most every `interval` seconds, see recommender.store.stamps) and only then looks up
the live version and rebuilds. A request therefore never loads a model and never waits on the
database for the check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pymongo.errors import ConnectionFailure

from recommender.model_store import versions
from recommender.model_store.versions import NoModelError, StoredModel
from recommender.store import stamps

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ModelCache:
    def __init__(self, interval: float = 2.0, follow_local_writes: bool = True):
        self.stamps = stamps.StampCache(interval, follow_local_writes)
        self._entries: dict[str, tuple[tuple, Any]] = {}
        self._retry_at: dict[str, float] = {}  # name -> when to look again (store unreachable)
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
            if time.monotonic() < self._retry_at.get(name, 0.0):
                return entry[1] if entry else None
            try:
                component = build(versions.load(name))
            except NoModelError:
                component = None
            except ConnectionFailure as error:
                # Serve what is held (or nothing: the next engine answers); look again later,
                # not on every request (each look waits for the driver's timeout).
                logger.warning("Database unreachable loading model %s: %s", name, error)
                self._retry_at[name] = time.monotonic() + stamps.RETRY_UNREACHABLE_S
                return entry[1] if entry else None
            self._entries[name] = (key, component)
            return component

    def clear(self) -> None:
        self._entries.clear()
        self.stamps.invalidate()
