"""The one interface every recommendation engine implements.

The recommendation service builds a `RecommendationContext` (user resolved, candidates already
narrowed to recommendable services the user has not accessed) and asks the engine selector for
an engine. Engines know nothing of HTTP or Flask: they are built with `ServingDeps` (settings,
this process's model cache and catalogue) and answer with an `EngineResult`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recommender.evaluation.exploration import Exploration

if TYPE_CHECKING:
    from recommender.catalogue import Catalogue
    from recommender.model_store.cache import ModelCache
    from recommender.settings import Settings


@dataclass(frozen=True)
class ServingDeps:
    """What an engine is built with (one set per app)."""

    settings: Settings
    models: ModelCache  # this process's inference components, rebuilt on new versions
    catalogue: Callable[[], Catalogue]  # the current in-memory catalogue


@dataclass
class RecommendationContext:
    """What an engine needs for one request; `candidates` are already eligible (see module doc)."""

    candidates: np.ndarray  # int64 service ids, eligible, in the client's order
    panel_id: str = "v1"
    user_id: int | None = None  # None: anonymous
    search_data: dict = field(default_factory=dict)
    # The user's own accessed services (already excluded from `candidates`), oldest first.
    accessed_services: tuple[int, ...] = ()
    unique_id: str | None = None
    timestamp: dt.datetime | None = None  # naive UTC, when the client asked

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    def seed(self) -> int:
        """A seed derived from the request (unique_id + timestamp): the same request replays."""
        key = f"{self.unique_id}|{self.timestamp.isoformat() if self.timestamp else ''}"
        return zlib.crc32(key.encode())


def generator(seed: int) -> np.random.Generator:
    """A new generator in the state of `seed`: `choose` with it replays a drawn answer."""
    return seeded(np.random.Generator(np.random.PCG64(0)), seed)


def seeded(rng: np.random.Generator, seed: int) -> np.random.Generator:
    """`rng` set to the state of `seed`: PCG64's 128-bit state and odd increment hashed from
    it (setting a state is several times quicker than seeding a new generator)."""
    digest = hashlib.blake2b(seed.to_bytes(8, "little"), digest_size=32).digest()
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": int.from_bytes(digest[:16], "little"),
            "inc": int.from_bytes(digest[16:], "little") | 1,
        },
        "has_uint32": 0,
        "uinteger": 0,
    }
    return rng


@dataclass(frozen=True)
class Draw:
    """How a random answer was drawn, for the stored recommendation: the policy's exploration
    setting, the seed that replays the draw, and P(each shown service at its position) and
    P(the whole slate, in order)."""

    exploration: Exploration
    seed: int  # `generator(seed)` replays the draw
    propensities: list[float]
    slate_propensity: float | None


@dataclass
class EngineResult:
    services: list[int]
    scores: list[float]
    explanations: list[str]
    explanations_short: list[str]
    draw: Draw | None = None  # None: the answer is deterministic (every propensity 1)

    @classmethod
    def empty(cls) -> EngineResult:
        return cls([], [], [], [])

    @classmethod
    def build(cls, services, scores, long: str, short: str) -> EngineResult:
        # numpy's tolist gives Python ints and floats in one C pass (ranking: ~1,000 items).
        services = np.asarray(services, dtype=np.int64).tolist()
        n = len(services)
        scores = np.asarray(scores, dtype=np.float64).tolist()
        return cls(services, scores, [long] * n, [short] * n)


Explain = Callable[[np.ndarray], tuple[list[str], list[str]]]


@dataclass(frozen=True)
class Scored:
    """One request's scores of every candidate an engine can show (`ids`, a subset of the
    context's candidates in their order), and how it explains any of them: a serving policy
    other than the greedy top K chooses among these."""

    ids: np.ndarray  # int64
    scores: np.ndarray  # one per id, higher is better
    explain: Explain  # positions into `ids` -> (long, short) explanations

    @classmethod
    def empty(cls) -> Scored:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0), lambda _: ([], []))

    def answer(self, positions: np.ndarray) -> EngineResult:
        """The answer showing `ids[positions]`, in that order."""
        long, short = self.explain(positions)
        return EngineResult(
            self.ids[positions].tolist(), self.scores[positions].tolist(), long, short
        )

    def top(self, k: int) -> EngineResult:
        """The greedy answer: the `k` best, ties by id."""
        return self.answer(top(self.ids, self.scores, k))


def same(long: str, short: str) -> Explain:
    """The explanations of an engine that says the same of every service."""
    return lambda positions: ([long] * len(positions), [short] * len(positions))


def pick(condition: np.ndarray, if_true: str, if_false: str) -> list[str]:
    """Per element of `condition`, one of two texts: a list that shares the two string objects
    (a ranking's ~1,000 explanations are two objects, not ~1,000 new strings)."""
    return np.array([if_false, if_true], dtype=object)[condition.astype(np.intp)].tolist()


def top(ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the `k` best scores, best first, ties broken by id (stable answers).
    Only the scores that can make the top `k` are sorted."""
    pool = np.arange(len(scores))
    if k < len(scores):
        kth_best = -np.partition(-scores, k - 1)[k - 1]
        pool = np.flatnonzero(scores >= kth_best)
    return pool[np.lexsort((ids[pool], -scores[pool]))][:k]


class Engine(ABC):
    """An engine; instances are long-lived, so per-request state never lives on `self`.
    Its served names and whether it serves anonymous visitors are in its folder's spec."""

    @abstractmethod
    def is_ready(self) -> tuple[bool, str | None]:
        """(ready, why not): False when the model it needs is missing."""

    @abstractmethod
    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        """The best `k` candidates (fewer only when fewer are eligible)."""

    def rank(self, context: RecommendationContext) -> EngineResult:
        """Every candidate, best first."""
        return self.recommend(context, len(context.candidates))

    def scored(self, context: RecommendationContext) -> Scored | None:
        """Every candidate's score, for a serving policy that explores around the top K; None
        when the engine does not score candidates one by one (its answer is its own slate)."""
        return None

    def model_version(self) -> int | None:
        """The live model version this engine serves (None: no model); shown in /metrics."""
        return None

    def slate_marginals(self, context: RecommendationContext, k: int) -> np.ndarray:
        """[n, K] probability that `recommend` shows candidate i (in `context.candidates`
        order) at position j, K = min(k, n). For offline use (off-policy evaluation of this
        engine as a target policy). A deterministic engine puts 1 on the slate it answers; an
        engine that draws at random overrides this with its true marginals."""
        n = len(context.candidates)
        result = np.zeros((n, min(k, n)))
        if n == 0:
            return result
        shown = np.asarray(self.recommend(context, k).services[: result.shape[1]], np.int64)
        index = {service: i for i, service in enumerate(context.candidates.tolist())}
        rows = [index.get(service, -1) for service in shown.tolist()]
        for position, row in enumerate(rows):
            if row >= 0:  # an answer outside the candidates cannot be reweighted: left out
                result[row, position] = 1.0
        return result

    def answer(self, context: RecommendationContext, k: int, ranking: bool) -> EngineResult:
        """Top `k`, or every candidate ranked when `ranking`."""
        if len(context.candidates) == 0:
            return EngineResult.empty()
        return self.rank(context) if ranking else self.recommend(context, k)


class TrainedEngine(Engine):
    """An engine served from a trained model: ready while its cached component exists."""

    @abstractmethod
    def component(self):
        """The inference component of the live model version (cached), or None."""

    def is_ready(self) -> tuple[bool, str | None]:
        return (True, None) if self.component() is not None else (False, "Missing model in db")

    def model_version(self) -> int | None:
        model = self.component()
        return None if model is None else model.version
