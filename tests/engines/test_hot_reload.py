"""Hot reload: a serving process picks up a newly promoted version without a restart, and its
hot path makes no database round trip between two stamp checks.

Serving and training are separate roles that share only MongoDB; mongomock cannot be shared
between processes, so the serving side here is its own `ModelCache` (as in each API process),
and the training side writes through model_store exactly as a worker does.
"""

from __future__ import annotations

import time

import pytest
import torch

from recommender.model_store import versions as model_store
from recommender.model_store.cache import ModelCache
from recommender.store import stamps

INTERVAL = 0.2


def train_version(value: float) -> int:
    """What the training role does: save a candidate, then promote it."""
    candidate = model_store.save_candidate("scorer", {"weight": torch.full((2,), value)})
    model_store.promote(candidate)
    return candidate.version


@pytest.fixture
def stamp_reads(monkeypatch):
    reads = []
    real = stamps.read_all

    def counting() -> dict[str, int]:
        reads.append(time.monotonic())
        return real()

    monkeypatch.setattr(stamps, "read_all", counting)
    return reads


def test_serving_cache_picks_up_a_promoted_version_within_the_interval(app, stamp_reads):
    builds = []

    def build(stored: model_store.StoredModel) -> tuple[int, float]:
        builds.append(stored.version)
        return stored.version, stored.tensors["weight"][0].item()

    serving = ModelCache(interval=INTERVAL, follow_local_writes=False)  # another process
    train_version(1.0)
    assert serving.get("scorer", build) == (1, 1.0)
    first_read = stamp_reads[-1]

    train_version(2.0)  # the "worker" promotes a new version
    served = []
    for _ in range(50):  # requests right after: still v1, served from memory
        version = serving.get("scorer", build)[0]
        served.append((time.monotonic() - first_read, version))
    assert all(version == 1 for age, version in served if age < INTERVAL)
    # No stamp read (no database round trip) within the interval after the last one.
    assert all(read - first_read >= INTERVAL for read in stamp_reads[1:])

    time.sleep(INTERVAL + 0.1)
    assert serving.get("scorer", build) == (2, 2.0)
    assert serving.get("scorer", build) == (2, 2.0)
    assert builds == [1, 2]  # built once per version, never per request


def test_rejected_candidate_never_reaches_serving(app):
    serving = ModelCache(interval=0)
    train_version(1.0)
    candidate = model_store.save_candidate("scorer", {"weight": torch.full((2,), 9.0)})
    model_store.reject(candidate, "worse than live")

    stored = serving.get("scorer", lambda s: s)

    assert stored.version == 1 and stored.tensors["weight"][0].item() == 1.0


def test_dropping_models_reaches_serving(app):
    serving = ModelCache(interval=0)
    train_version(1.0)
    assert serving.get("scorer", lambda s: s.version) == 1

    model_store.drop_all()

    assert serving.get("scorer", lambda s: s.version) is None


def test_catalogue_change_rebuilds_dependents(app):
    serving = ModelCache(interval=0)
    train_version(1.0)
    first = serving.get("scorer", lambda s: object(), depends_on=(stamps.CATALOGUE,))
    assert serving.get("scorer", lambda s: object(), depends_on=(stamps.CATALOGUE,)) is first

    stamps.bump(stamps.CATALOGUE)

    assert serving.get("scorer", lambda s: object(), depends_on=(stamps.CATALOGUE,)) is not first
