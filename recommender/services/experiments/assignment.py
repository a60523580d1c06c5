"""Which variant a request belongs to: a stable, salted hash of the visitor, in microseconds.

The running experiments are read once per change (the "experiments" stamp, checked with the
catalogue's at most every MODEL_RELOAD_INTERVAL seconds) into a table per (panel, client), so a
request costs one dictionary lookup and, in an experiment, one 8-byte BLAKE2b hash. The visitor
is the logged-in user's id, else the browser's `unique_id`: one visitor always lands in the same
variant of an experiment, and each experiment (its own salt) splits visitors independently.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import threading
from dataclasses import dataclass

from recommender.models.experiments import RUNNING, STAMP, Experiment
from recommender.store import stamps

HASH_SPACE = float(2**64)


@dataclass(frozen=True)
class Assignment:
    experiment: str  # id
    variant: str
    engine: str


@dataclass(frozen=True)
class RunningExperiment:
    id: str
    salt: bytes
    panels: frozenset[str]  # empty: all
    clients: frozenset[str]
    names: tuple[str, ...]
    engines: tuple[str, ...]
    bounds: tuple[float, ...]  # cumulative shares: variant i owns [bounds[i - 1], bounds[i])

    @classmethod
    def of(cls, experiment: Experiment) -> RunningExperiment:
        return cls(
            id=str(experiment.id),
            salt=experiment.salt.encode(),
            panels=frozenset(experiment.panels),
            clients=frozenset(experiment.clients),
            names=tuple(v.name for v in experiment.variants),
            engines=tuple(v.engine for v in experiment.variants),
            bounds=tuple(itertools.accumulate(v.share for v in experiment.variants)),
        )

    def covers(self, panel: str, client: str | None) -> bool:
        return (not self.panels or panel in self.panels) and (
            not self.clients or client in self.clients
        )

    def assign(self, visitor: str) -> Assignment:
        digest = hashlib.blake2b(visitor.encode(), digest_size=8, key=self.salt).digest()
        point = int.from_bytes(digest, "big") / HASH_SPACE
        index = min(bisect.bisect_right(self.bounds, point), len(self.names) - 1)
        return Assignment(self.id, self.names[index], self.engines[index])


Scope = tuple[str, str | None]  # (panel, client)


@dataclass(frozen=True)
class Loaded:
    """The running experiments at one stamp version, and which covers each scope seen so far
    (replaced whole, so a reader never mixes two versions)."""

    version: int | None
    running: tuple[RunningExperiment, ...]
    scopes: dict[Scope, RunningExperiment | None]


class RunningExperiments:
    """The running experiments of this app, reloaded when the experiments stamp moves."""

    def __init__(self, stamp_cache: stamps.StampCache):
        self._stamps = stamp_cache
        self._loaded = Loaded(None, (), {})
        self._lock = threading.Lock()

    def assign(self, panel: str, client: str | None, visitor: str) -> Assignment | None:
        """The variant of the experiment covering (panel, client), or None when none does."""
        loaded = self._current()
        scope = loaded.scopes.get((panel, client), False)
        if scope is False:  # first request of this scope since the last reload
            scope = next((e for e in loaded.running if e.covers(panel, client)), None)
            self._loaded = Loaded(
                loaded.version, loaded.running, {**loaded.scopes, (panel, client): scope}
            )
        return None if scope is None else scope.assign(visitor)

    def _current(self) -> Loaded:
        version, loaded = self._stamps.get(STAMP), self._loaded
        if version == loaded.version:
            return loaded
        with self._lock:
            if self._loaded.version != version:
                running = Experiment.objects(status=RUNNING).only(
                    "salt", "panels", "clients", "variants"
                )
                self._loaded = Loaded(version, tuple(RunningExperiment.of(e) for e in running), {})
            return self._loaded
