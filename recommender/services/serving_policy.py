"""The serving policy: which of its candidates an engine's top-K answer shows, and the record
of how it was chosen that the stored Recommendation keeps for off-policy evaluation.

Per panel (settings EXPLORATION_*), a top-K answer is either the engine's greedy top K or drawn
by `exploration.choose` around the engine's scores of every candidate (`Engine.scored`):
epsilon-greedy or Plackett-Luce. Each drawn answer gets its own seed, taken from this process's
generator (seeded by EXPLORATION_SEED; a forked worker mixes in its pid so that workers do not
repeat each other's seeds): `choose` with `generator(seed)` over the same engine's (same model
version's) scores of the same candidates replays it (`replay`).
Rankings, and engines that do not score candidates one by one (their answer is their own
slate), are answered as they are. Every answer is recorded (`record`): deterministic ones with
propensity 1 at every position; random ones (explored, or an engine that draws, as Random)
with the probabilities of their draw.
"""

from __future__ import annotations

import os
import random
import threading
import weakref
from functools import cache

import numpy as np

from recommender.engines.base.engine import (
    Draw,
    Engine,
    EngineResult,
    RecommendationContext,
    Scored,
    generator,
    seeded,
    top,
)
from recommender.evaluation.exploration import (
    Exploration,
    epsilon_slate,
    marginals,
    plackett_luce_slate,
)
from recommender.panels import PANEL_K
from recommender.services.experiments.assignment import Assignment
from recommender.settings import Settings

OFF = Exploration("off")


class ExplorationSettingsError(ValueError):
    """The EXPLORATION_* settings describe a policy that cannot be served."""


def panel_explorations(settings: Settings) -> dict[str, Exploration]:
    """Each panel's exploration from the settings; raises ExplorationSettingsError naming the
    setting when one cannot be served."""
    explorations = {}
    for panel, k in PANEL_K.items():
        suffix = panel.upper()
        epsilon = getattr(settings, f"EXPLORATION_EPSILON_{suffix}")
        temperature = getattr(settings, f"EXPLORATION_TEMPERATURE_{suffix}")
        if temperature > 0:
            exploration = Exploration(
                "plackett_luce", temperature=temperature, pool=settings.EXPLORATION_POOL
            )
            _check_pool(exploration, k, f"EXPLORATION_TEMPERATURE_{suffix}")
        elif epsilon > 0:
            exploration = Exploration("epsilon", epsilon=epsilon)
        else:
            exploration = OFF
        explorations[panel] = exploration
    return explorations


def _check_pool(exploration: Exploration, k: int, setting: str) -> None:
    """Plackett-Luce's exact propensities enumerate the pool's ordered prefixes: a pool too
    wide for the panel's K is refused now, not on the first request (this also compiles the
    enumeration's loops once, before any request needs them)."""
    try:
        marginals(np.zeros(exploration.pool), k, exploration)
        pool_scores = np.zeros(max(exploration.pool, k))
        plackett_luce_slate(pool_scores, k, exploration.temperature, generator(0))
    except ValueError as error:
        raise ExplorationSettingsError(
            f"EXPLORATION_POOL={exploration.pool} with {setting}={exploration.temperature}"
            f" (K={k}): {error}"
        ) from None


_THREAD = threading.local()


def _thread_generator() -> np.random.Generator:
    """This request thread's own generator (a generator is not thread-safe)."""
    rng = getattr(_THREAD, "rng", None)
    if rng is None:
        rng = _THREAD.rng = np.random.Generator(np.random.PCG64(0))
    return rng


class ServingPolicy:
    """One app's serving policy (built once per app, shared by its request threads)."""

    def __init__(self, settings: Settings):
        self.explorations = panel_explorations(settings)
        self.seed = settings.EXPLORATION_SEED
        # random.Random: getrandbits is one C call, safe across request threads (the GIL).
        self._seeds = random.Random(self.seed)
        _POLICIES.add(self)

    def exploration(self, panel: str) -> Exploration:
        return self.explorations.get(panel, OFF)

    def answer(
        self, engine: Engine, context: RecommendationContext, k: int, ranking: bool
    ) -> EngineResult:
        """`engine`'s answer as this policy serves it (see the module doc)."""
        exploration = self.exploration(context.panel_id)
        if not ranking and exploration.enabled and len(context.candidates):
            scored = engine.scored(context)
            if scored is not None:
                seed = self._seeds.getrandbits(63)
                return self.draw(scored, k, exploration, seed, _thread_generator())
        return engine.answer(context, k, ranking)

    @staticmethod
    def draw(
        scored: Scored,
        k: int,
        exploration: Exploration,
        seed: int,
        rng: np.random.Generator | None = None,
    ) -> EngineResult:
        """The answer `choose` draws among `scored` with `generator(seed)`, with its
        propensities (`rng`: a generator to set to `seed` instead of a new one)."""
        if len(scored.ids) == 0:
            return EngineResult.empty()
        scores = _finite(scored.scores)
        shown = min(k, len(scores))
        rng = generator(seed) if rng is None else seeded(rng, seed)
        if exploration.method == "plackett_luce":
            # Only the pool can be shown: the draw over the pool's scores, best first (the
            # order `choose` gives them itself), is what `choose` draws over every score (same
            # weights, same noise), without sorting every candidate.
            pool = _best(scores, min(max(exploration.pool, shown), len(scores)))
            slate = plackett_luce_slate(scores[pool], shown, exploration.temperature, rng)
            positions = pool[slate.positions]
        else:
            greedy = top(scored.ids, scores, shown)  # the engine's own top K (ties by id)
            slate = epsilon_slate(len(scores), greedy, exploration.epsilon, rng)
            positions = slate.positions
        result = scored.answer(positions)
        result.draw = Draw(exploration, seed, slate.propensities.tolist(), slate.slate_propensity)
        return result

    def _after_fork_in_child(self) -> None:
        self._seeds.seed(f"{self.seed}:{os.getpid()}")


def replay(scored: Scored, k: int, policy: dict) -> list[int]:
    """The services a stored recommendation's policy (its `policy` field) showed, drawn again
    from the engine's scores of the same candidates (same model version)."""
    spec = policy["exploration"]
    exploration = Exploration(spec["method"], spec["epsilon"], spec["temperature"], spec["pool"])
    if not exploration.enabled:
        return scored.top(k).services
    return ServingPolicy.draw(scored, k, exploration, policy["seed"]).services


def record(name: str, engine: Engine, result: EngineResult, assignment: Assignment | None) -> dict:
    """The stored Recommendation's `policy`, `propensities` and `slate_propensity`."""
    draw = result.draw
    return {
        "policy": {
            "engine": name,
            "model_version": engine.model_version(),
            "experiment": assignment.experiment if assignment else None,
            "variant": assignment.variant if assignment else None,
            "exploration": dict(_described(draw.exploration if draw else OFF)),
            "seed": draw.seed if draw else 0,
        },
        "propensities": draw.propensities if draw else [1.0] * len(result.services),
        "slate_propensity": draw.slate_propensity if draw else 1.0,
    }


@cache
def _described(exploration: Exploration) -> tuple[tuple[str, object], ...]:
    return (
        ("method", exploration.method),
        ("epsilon", exploration.epsilon),
        ("temperature", exploration.temperature),
        ("pool", exploration.pool),
    )


def _best(scores: np.ndarray, m: int) -> np.ndarray:
    """Positions of the `m` best scores, best first, ties by the lower position: what a stable
    sort of every score starts with, from a partition and a sort of the few that can make it."""
    if m >= len(scores):
        return np.argsort(-scores, kind="stable")
    kth_best = -np.partition(-scores, m - 1)[m - 1]
    pool = np.flatnonzero(scores >= kth_best)
    return pool[np.lexsort((pool, -scores[pool]))][:m]


def _finite(scores: np.ndarray) -> np.ndarray:
    """Scores `choose` accepts: a NaN or -inf ranks below every finite score (as the
    evaluation protocol ranks NaN last), +inf above."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if finite.all():
        return scores
    low, high = (scores[finite].min(), scores[finite].max()) if finite.any() else (0.0, 0.0)
    return np.nan_to_num(scores, nan=low - 1.0, neginf=low - 1.0, posinf=high + 1.0)


# Every live policy, reseeded in a forked child (gunicorn --preload forks after building it).
_POLICIES: weakref.WeakSet[ServingPolicy] = weakref.WeakSet()


def _reseed_after_fork() -> None:
    for policy in list(_POLICIES):
        policy._after_fork_in_child()


os.register_at_fork(after_in_child=_reseed_after_fork)
