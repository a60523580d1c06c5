"""Ranking metrics for every engine's evaluation: HR@K, NDCG@K, Recall@K and MRR.

Each evaluated user has one held-out positive, ranked against negatives (services the user never
accessed): `n` sampled ones, or every one (full catalogue; see recommender.evaluation.protocol).
The positive's rank is the number of negatives scoring above it, ties broken uniformly at random
with a seeded generator, so a constant scorer gets chance figures instead of a perfect
(optimistic ties) or zero (pessimistic ties) score.

Non-finite scores rank last: a negative scored NaN or +-inf never outranks the positive (padding
is -inf: users with fewer unseen services than `n`), and a positive scored NaN or +-inf ranks
below every negative. NaN compares false with everything, so without this rule a NaN model would
rank every positive first and score a perfect HR (the pipelines also fail such a model outright).

    HR@K     = mean(rank < K)         (one relevant item: Recall@K is the same number)
    NDCG@K   = mean(1 / log2(rank + 2) if rank < K else 0)      (one relevant item: IDCG = 1)
    MRR      = mean(1 / (rank + 1))
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

DEFAULT_KS = (3, 10)
DEFAULT_NEGATIVES = 99


def positive_ranks(
    positive: np.ndarray, negatives: np.ndarray, rng: np.random.Generator | None = None
) -> np.ndarray:
    """0-based rank of each row's positive among its negatives (`positive` [n], `negatives`
    [n, m]); ties take a uniformly random place among the tied (seeded); non-finite scores rank
    last (see the module doc)."""
    positive = np.asarray(positive, dtype=np.float64).reshape(-1, 1)
    negatives = np.asarray(negatives, dtype=np.float64)
    counted = np.isfinite(negatives)
    above = ((negatives > positive) & counted).sum(axis=1)
    tied = ((negatives == positive) & counted).sum(axis=1)
    if tied.any():
        rng = rng if rng is not None else np.random.default_rng(0)
        above = above + np.floor(rng.random(len(tied)) * (tied + 1)).astype(np.int64)
    return np.where(np.isfinite(positive[:, 0]), above, negatives.shape[1])


def hit_rate(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks)
    return float((ranks < k).mean()) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    if not len(ranks):
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(gains.mean())


def ranking_metrics(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """{"hr@K": ..., "ndcg@K": ...} for each K, plus the number of evaluated users."""
    result: dict[str, float] = {"users": len(ranks)}
    for k in ks:
        result[f"hr@{k}"] = hit_rate(ranks, k)
        result[f"ndcg@{k}"] = ndcg(ranks, k)
    return result


def full_catalogue_metrics(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """`ranking_metrics` plus Recall@K (equal to HR@K with one held-out item, reported for
    comparison with papers) and MRR, for ranks among every unseen service."""
    result = ranking_metrics(ranks, ks)
    for k in ks:
        result[f"recall@{k}"] = result[f"hr@{k}"]
    ranks = np.asarray(ranks, dtype=np.float64)
    result["mrr"] = float((1.0 / (ranks + 1.0)).mean()) if len(ranks) else 0.0
    return result


def score_metrics(
    positive: np.ndarray,
    negatives: np.ndarray,
    ks: Iterable[int] = DEFAULT_KS,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """`ranking_metrics` of the positives' ranks among their negatives (see positive_ranks)."""
    return ranking_metrics(positive_ranks(positive, negatives, rng), ks)


def sample_excluding(
    rng: np.random.Generator,
    rows: np.ndarray,
    pool: np.ndarray,
    forbidden: np.ndarray,
    n: int,
    width: int,
    replace: bool = True,
    max_rounds: int = 50,
) -> np.ndarray:
    """`n` items per entry of `rows`, drawn uniformly from `pool` (int64 item indices), never
    an item whose key `row * width + item` is in `forbidden` (sorted int64 keys).

    Vectorised rejection sampling. With `replace=False` a row never repeats an item; rows that
    cannot get `n` allowed items are padded with -1. Returns int64 [len(rows), n].
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full((len(rows), n), -1, dtype=np.int64)
    if len(rows) == 0 or n == 0 or len(pool) == 0:
        return out
    todo = np.arange(len(rows))
    for _ in range(max_rounds):
        draws = pool[rng.integers(len(pool), size=(len(todo), 2 * n))]
        current = out[todo]
        candidates = np.concatenate([current, draws], axis=1)
        ok = (candidates >= 0) & ~contains_sorted(forbidden, rows[todo, None] * width + candidates)
        if not replace:
            ok &= ~_repeated(candidates)
        # Stable: items already kept stay first, then new draws in draw order.
        order = np.argsort(~ok, axis=1, kind="stable")[:, :n]
        chosen = np.take_along_axis(candidates, order, axis=1)
        keep = np.take_along_axis(ok, order, axis=1)
        out[todo] = np.where(keep, chosen, -1)
        todo = todo[~keep.all(axis=1)]
        if len(todo) == 0:
            break
    return out


def contains_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per key: True when it is in `sorted_keys` (sorted int64)."""
    if len(sorted_keys) == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def _repeated(items: np.ndarray) -> np.ndarray:
    """Per cell: True when the same item occurs earlier in its row."""
    order = np.argsort(items, axis=1, kind="stable")
    ordered = np.take_along_axis(items, order, axis=1)
    dup_sorted = np.zeros(items.shape, dtype=bool)
    dup_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    repeated = np.zeros(items.shape, dtype=bool)
    np.put_along_axis(repeated, order, dup_sorted, axis=1)
    return repeated
