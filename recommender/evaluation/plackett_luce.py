"""Exact Plackett-Luce probabilities over a pool of scores, compiled with numba.

A pool's scores come best first. Candidate c has weight w_c = exp((s_c - s_0) / tau); a slate is
drawn position by position without replacement, position j picking c with probability w_c / R,
R being the weight still unshown. The per-position marginal P(c at position j) sums, over every
ordered prefix of the j earlier positions that leaves c unshown, P(prefix) w_c / R(prefix):
pool!/(pool - j)! prefixes for position j (1 + 20 + 380 for a pool of 20 and K = 3). Written
with numpy that is some forty array calls on twenty numbers, each call costing more than its
arithmetic, inside every served Plackett-Luce answer; compiled, it is a few loops.

R is kept accurate however much one weight dwarfs the others: the full pool's weight is summed
smallest first, and a prefix's child takes its parent's R minus the child's weight unless that
weight is more than half of it (where the subtraction could cancel) and is then summed again
from the unshown weights (at most one child per prefix).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Weights below exp(-700) are raised to it: every pool candidate keeps a positive weight, so the
# sampling order and its probabilities stay defined (no 0/0) at tiny temperatures, and the change
# to any probability is far below float precision.
MIN_LOG_WEIGHT = -700.0
_EVERY_CANDIDATE = np.zeros(0, dtype=np.int64)


def pool_weights(pool_scores: np.ndarray, temperature: float) -> np.ndarray:
    """The pool's Plackett-Luce weights (scores best first): the best has weight 1."""
    return np.exp(_log_weights(np.asarray(pool_scores, dtype=np.float64), float(temperature)))


def draw(
    pool_scores: np.ndarray, temperature: float, noise: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """The slate that Gumbel `noise` (one per pool candidate) draws: the K largest log-weights
    plus noise in order (ties to the lower position), which orders the pool as sequential
    sampling without replacement would. Returns (its pool positions, P(each at its position),
    P(the whole ordered slate))."""
    return _draw(pool_scores, float(temperature), noise, int(k))


def marginals(weights: np.ndarray, k: int) -> np.ndarray:
    """[pool, K] P(pool candidate c at position j) for the pool's weights (best first)."""
    return _marginals(weights, int(k), _EVERY_CANDIDATE)


@njit(nogil=True)
def _log_weights(pool_scores, temperature):
    result = np.empty(pool_scores.size)
    for c in range(pool_scores.size):
        result[c] = max((pool_scores[c] - pool_scores[0]) / temperature, MIN_LOG_WEIGHT)
    return result


@njit(nogil=True)
def _draw(pool_scores, temperature, noise, k):
    n = pool_scores.size
    log_weights = _log_weights(pool_scores, temperature)
    weights = np.exp(log_weights)
    keys = log_weights + noise
    shown = np.zeros(n, np.bool_)
    positions = np.empty(k, np.int64)
    slate = 1.0
    for j in range(k):
        best = -1
        for c in range(n):
            if not shown[c] and (best < 0 or keys[c] > keys[best]):
                best = c
        slate *= weights[best] / _unshown_weight(weights, shown)
        positions[j] = best
        shown[best] = True
    out = _marginals(weights, k, positions)
    propensities = np.empty(k)
    for j in range(k):
        propensities[j] = out[positions[j], j]
    return positions, propensities, slate


@njit(nogil=True, inline="always")
def _unshown_weight(weights, shown):
    total = 0.0
    for c in range(weights.size - 1, -1, -1):  # smallest first
        if not shown[c]:
            total += weights[c]
    return total


@njit(nogil=True, inline="always")
def _child_rest(weights, shown, rest, child):
    """R once `child` (already marked shown) joins a prefix that left `rest` unshown."""
    if weights[child] <= 0.5 * rest:
        return rest - weights[child]
    return _unshown_weight(weights, shown)


@njit(nogil=True, inline="always")
def _credit(weights, shown, position, ratio, cells, out):
    """Add one prefix's P(prefix) / R(prefix) x w_c to each unshown c's cell at `position`: only
    cells[position]'s when `cells` names one candidate per position, else every candidate's."""
    if cells.size:
        item = cells[position]
        if not shown[item]:
            out[item, position] += ratio * weights[item]
    else:
        for c in range(weights.size):
            if not shown[c]:
                out[c, position] += ratio * weights[c]


@njit(nogil=True)
def _credit_children(weights, shown, depth, probability, rest, cells, out):
    """Credit the last position for every child of a prefix of length `depth` (a loop of its
    own: the children of the next-to-last level are most of the prefixes)."""
    for c in range(weights.size):
        if shown[c]:
            continue
        shown[c] = True
        ratio = probability * weights[c] / rest / _child_rest(weights, shown, rest, c)
        _credit(weights, shown, depth + 1, ratio, cells, out)
        shown[c] = False


@njit(nogil=True)
def _marginals(weights, k, cells):
    """The [pool, K] marginals (only the cells `cells` names, when it names one per position),
    by a depth-first walk over the ordered prefixes of length < K."""
    n = weights.size
    out = np.zeros((n, k))
    shown = np.zeros(n, np.bool_)
    items = np.empty(k, np.int64)  # the walk's current prefix, by depth
    probability = np.empty(k)  # P(prefix up to depth)
    rest = np.empty(k)  # R(prefix up to depth)
    cursor = np.zeros(k, np.int64)  # the next child to visit at each depth
    probability[0] = 1.0
    rest[0] = _unshown_weight(weights, shown)
    _credit(weights, shown, 0, 1.0 / rest[0], cells, out)
    depth = 0
    while k > 1:
        if depth + 2 == k:  # the children are the last level
            _credit_children(weights, shown, depth, probability[depth], rest[depth], cells, out)
            if depth == 0:
                break
            shown[items[depth]] = False
            depth -= 1
            continue
        c = cursor[depth]
        while c < n and shown[c]:
            c += 1
        if c == n:  # this prefix is done: back to its parent
            if depth == 0:
                break
            shown[items[depth]] = False
            depth -= 1
            continue
        cursor[depth] = c + 1
        shown[c] = True
        child_probability = probability[depth] * weights[c] / rest[depth]
        child_rest = _child_rest(weights, shown, rest[depth], c)
        _credit(weights, shown, depth + 1, child_probability / child_rest, cells, out)
        depth += 1
        items[depth] = c
        probability[depth] = child_probability
        rest[depth] = child_rest
        cursor[depth] = 0
    return out
