"""The stochastic serving policy: which K of n scored candidates a panel shows, and with what
probability, so that served slates can later feed off-policy estimators (`offpolicy.py`).

Three methods:

- `off`: the greedy top-K (highest scores first, ties broken by the lower index). Every shown
  item has propensity 1, and so does the slate.
- `epsilon` (slate-level epsilon-greedy): with probability 1 - epsilon the greedy top-K; with
  probability epsilon K candidates drawn uniformly without replacement, in random order. So
  P(c at position j) = (1 - epsilon) [c is greedy's j-th] + epsilon / n, and
  P(slate) = (1 - epsilon) [slate is greedy's] + epsilon (n - K)! / n!.
- `plackett_luce` with temperature tau over the `pool` best-scoring candidates (ties to the
  lower index; the pool is widened to K where smaller, so that a slate is always full): c of
  the pool has weight w_c = exp((s_c - max s) / tau); the slate is drawn position by position
  without replacement, each position picking c with probability w_c / (sum of the weights still
  unshown). Candidates outside the pool are never shown (probability 0), so an estimator can only
  evaluate a target policy on the pool's items; a wider pool buys support at the price of
  showing worse items. P(slate) = prod_j w_{a_j} / (W - sum_{l<j} w_{a_l}); the per-position
  marginals are summed exactly over every ordered prefix of the pool (pool!/(pool-j)! prefixes
  for position j, e.g. 1 + 20 + 380 for pool 20 and K = 3), by compiled loops
  (`plackett_luce.py`).

A request with fewer candidates than K shows them all (a slate of n). The propensities recorded
with a slate are those of its own candidates and scores: the estimators need the policy that was
actually served, not one recomputed later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from recommender.evaluation import plackett_luce

Method = Literal["off", "epsilon", "plackett_luce"]
METHODS: tuple[Method, ...] = ("off", "epsilon", "plackett_luce")

# Bound on the prefix enumeration behind exact Plackett-Luce marginals (prefixes x pool cells),
# which grows like pool^(K-1).
_MAX_PREFIX_CELLS = 4_000_000


@dataclass(frozen=True)
class Exploration:
    """How a panel explores around its engine's greedy ranking (see the module docstring)."""

    method: Method
    epsilon: float = 0.0
    temperature: float = 1.0
    pool: int = 20

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"exploration method must be one of {METHODS}, got {self.method!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if not (np.isfinite(self.temperature) and self.temperature > 0.0):
            raise ValueError(f"temperature must be positive and finite, got {self.temperature}")
        if int(self.pool) != self.pool or self.pool < 1:
            raise ValueError(f"pool must be an integer >= 1, got {self.pool}")

    @property
    def enabled(self) -> bool:
        """Whether the policy can show anything other than the greedy top-K."""
        return self.method == "plackett_luce" or (self.method == "epsilon" and self.epsilon > 0)


@dataclass(frozen=True)
class Slate:
    """One served slate and its probabilities under the policy that chose it."""

    positions: np.ndarray  # indices into the candidate array, in shown order
    propensities: np.ndarray  # per shown position, P(policy shows that candidate at that position)
    # P(policy shows exactly this ordered slate); every current method defines it, None is left
    # for policies where it is intractable.
    slate_propensity: float | None
    explored: bool  # whether the shown slate differs from the greedy top-K


def choose(
    scores: np.ndarray,
    k: int,
    exploration: Exploration,
    rng: np.random.Generator,
    greedy: np.ndarray | None = None,
) -> Slate:
    """Draw the slate to show among `scores` (one per candidate, higher is better), with its
    exact propensities. `greedy` is the engine's own top-K (best first) when it has it already;
    the same `rng` state always gives the same slate."""
    scores = _checked_scores(scores)
    k = _slate_size(k, len(scores))
    if exploration.method == "plackett_luce":
        return _choose_plackett_luce(scores, k, exploration, rng, greedy)
    greedy = _top(scores, k) if greedy is None else _checked_greedy(greedy, k, len(scores))
    if exploration.method == "off":
        return Slate(greedy, np.ones(k), 1.0, explored=False)
    return epsilon_slate(len(scores), greedy, exploration.epsilon, rng)


def marginals(
    scores: np.ndarray, k: int, exploration: Exploration, greedy: np.ndarray | None = None
) -> np.ndarray:
    """[n, K] matrix of P(candidate c shown at position j) under the policy `choose` draws from
    (K = min(k, n)): each column sums to 1, each row to at most 1. For offline use: the
    Plackett-Luce case costs O(n log n + pool^K)."""
    scores = _checked_scores(scores)
    n = len(scores)
    k = _slate_size(k, n)
    result = np.zeros((n, k))
    if exploration.method == "plackett_luce":
        pool = _top(scores, _pool_size(exploration.pool, k, n))
        _check_enumeration(len(pool), k)
        weights = plackett_luce.pool_weights(scores[pool], exploration.temperature)
        result[pool] = plackett_luce.marginals(weights, k)
        return result
    greedy = _top(scores, k) if greedy is None else _checked_greedy(greedy, k, n)
    epsilon = exploration.epsilon if exploration.method == "epsilon" else 0.0
    result += epsilon / n
    result[greedy, np.arange(k)] += 1.0 - epsilon
    return result


def epsilon_slate(n: int, greedy: np.ndarray, epsilon: float, rng: np.random.Generator) -> Slate:
    """The epsilon-greedy draw of `choose` once the greedy top K is known (K = len(greedy) <= n
    positions among n candidates, both already checked): the serving path calls it directly."""
    k = len(greedy)
    # The uniform branch shows each ordered K-slate with probability (n - K)! / n!: int / int
    # division rounds the exact count correctly, and a tiny result underflows to 0, not overflow.
    uniform_slate = epsilon / math.perm(n, k)
    if rng.random() >= epsilon:  # the greedy slate: the same probability at every position
        return Slate(
            greedy, np.full(k, 1.0 - epsilon + epsilon / n), 1.0 - epsilon + uniform_slate, False
        )
    shown = rng.choice(n, size=k, replace=False)
    is_greedy = bool(np.array_equal(shown, greedy))
    propensities = (1.0 - epsilon) * (shown == greedy) + epsilon / n
    slate_propensity = (1.0 - epsilon) * is_greedy + uniform_slate
    return Slate(shown, propensities, slate_propensity, explored=not is_greedy)


def _choose_plackett_luce(
    scores: np.ndarray,
    k: int,
    exploration: Exploration,
    rng: np.random.Generator,
    greedy: np.ndarray | None,
) -> Slate:
    pool = _top(scores, _pool_size(exploration.pool, k, len(scores)))
    _check_enumeration(len(pool), k)
    greedy = pool[:k] if greedy is None else _checked_greedy(greedy, k, len(scores))
    drawn = plackett_luce_slate(scores[pool], k, exploration.temperature, rng)
    shown = pool[drawn.positions]
    explored = shown.tolist() != greedy.tolist()
    return Slate(shown, drawn.propensities, drawn.slate_propensity, explored)


def plackett_luce_slate(
    pool_scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator
) -> Slate:
    """The Plackett-Luce draw of `choose` once its pool is chosen: `pool_scores` are the pool's
    finite scores, best first (ties already ordered), and K <= their number; positions index
    into them. The serving path calls it directly, having chosen the pool itself (so nothing is
    checked or sorted twice); `explored` compares with the pool's first K."""
    noise = rng.gumbel(size=len(pool_scores))
    positions, propensities, slate_propensity = plackett_luce.draw(
        pool_scores, temperature, noise, k
    )
    explored = positions.tolist() != list(range(k))
    return Slate(positions, propensities, slate_propensity, explored)


def _check_enumeration(pool: int, k: int) -> None:
    """Exact marginals sum over every ordered prefix of the pool, a number that grows like
    pool^(K-1): refuse what would take seconds per slate."""
    cells = pool * math.perm(pool, k - 1)
    if cells > _MAX_PREFIX_CELLS:
        raise ValueError(
            f"exact Plackett-Luce marginals for pool {pool} and K {k} sum over {cells:.3g} "
            f"prefix cells (limit {_MAX_PREFIX_CELLS}): use a smaller pool"
        )


def _top(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m best scores, best first, ties broken by the lower index."""
    return np.argsort(-scores, kind="stable")[:m]


def _pool_size(pool: int, k: int, n: int) -> int:
    """The pool is widened to K where needed, so that a slate is always full."""
    return min(max(pool, k), n)


def _slate_size(k: int, n: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k}")
    return min(int(k), n)


def _checked_scores(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or not len(scores):
        raise ValueError(f"scores must be a non-empty 1-d array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return scores


def _checked_greedy(greedy: np.ndarray, k: int, n: int) -> np.ndarray:
    greedy = np.asarray(greedy)
    if greedy.shape != (k,) or greedy.dtype.kind not in "iu":
        raise ValueError(f"greedy must hold {k} integer positions, got {greedy!r}")
    # Plain Python over K values: quicker than numpy calls at slate sizes.
    values = greedy.tolist()
    if min(values) < 0 or max(values) >= n or len(set(values)) != k:
        raise ValueError(f"greedy must hold {k} distinct indices in [0, {n}), got {greedy}")
    return greedy
