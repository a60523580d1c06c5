"""The offline evaluation protocol: one split, one candidate pool and one set of negatives for
every engine's pipeline and evaluator and for benchmarks/quality.py.

Data. Positives are the users' `accessed_services` as the dump gives them, which is time order,
oldest first (the dump has no timestamps: the list order is the time order, and a service the
user accessed again keeps its first place). Unknown service ids are dropped.

Pool. Every candidate, positive or negative, comes from one pool: the recommendable services
(the only ones an engine is ever asked to rank). A deleted or draft service the user accessed
is training data, never a held-out positive, so a held-out item can never be a service that
could not also have been a negative.

Split (per user, leave-last-out by time). The user's last positive in the pool is the test item,
the one before it in the pool the validation item; everything else trains (services outside the
pool included). Users with fewer than `min_positives` positives, or fewer than two in the pool,
only train. Validation users are split at random (seeded) into a *tune* part, on which a pipeline
chooses its settings (grids, early stopping, blend weights), and a *gate* part, on which
promotion and the champion are decided: data the tuning did not select on. Test is read once,
for the record.

Negatives. Per held-out user, 99 distinct pool services the user never accessed, drawn from a
generator seeded by the seed alone (`evaluation_rng`), so every engine and benchmark peer ranks
the same candidates. Full-catalogue metrics rank the held-out item among every pool service the
user never accessed (on at most `full_users` users, drawn with the same generator).

Scores. A scorer maps (user rows [n], service rows [n, m]) to scores [n, m]; a score that is not
finite fails the evaluation (`NonFiniteScoresError`) instead of being ranked.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np

from recommender.evaluation.metrics import (
    DEFAULT_KS,
    DEFAULT_NEGATIVES,
    contains_sorted,
    full_catalogue_metrics,
    positive_ranks,
    ranking_metrics,
    sample_excluding,
)
from recommender.id_index import IdIndex

MIN_POSITIVES = 3
GATE_SHARE = 0.5  # of the validation users: the part promotion is decided on
EVALUATION_STREAM = 0x4E4346  # mixed into the seed: evaluation sampling is its own stream
BLOCK_PAIRS = 1 << 16  # (user, service) pairs scored per block (NCF: ~50 MB of activations)
COVERAGE_K = 10
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


class NonFiniteScoresError(ValueError):
    """A model produced NaN or infinite scores (or losses): it must not be ranked or promoted."""


def require_finite(values: np.ndarray | float, what: str) -> None:
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise NonFiniteScoresError(f"{what}: {bad} of {array.size} value(s) are NaN or infinite")


@dataclass(frozen=True)
class Interactions:
    users: IdIndex  # users with at least one positive
    services: IdIndex  # recommendable or accessed services
    recommendable: np.ndarray  # service rows that may be recommended: the pool
    user_rows: np.ndarray  # per positive, grouped by user, oldest first
    service_rows: np.ndarray
    position: np.ndarray  # index of the positive in its user's list
    length: np.ndarray  # that user's number of positives

    @property
    def width(self) -> int:
        """Key stride: a (user row, service row) pair is `user * width + service`."""
        return self.services.rows_total

    def in_pool(self) -> np.ndarray:
        """Per service row (the unknown row 0 included): True when it is in the pool."""
        mask = np.zeros(self.width, dtype=bool)
        mask[self.recommendable] = True
        return mask


@dataclass(frozen=True)
class HeldOut:
    users: np.ndarray  # user rows, one per evaluated user
    positives: np.ndarray  # the held-out service row of each
    negatives: np.ndarray  # [users, n] pool rows never accessed by the user (-1: padding)

    def subset(self, mask: np.ndarray) -> HeldOut:
        return HeldOut(self.users[mask], self.positives[mask], self.negatives[mask])

    def candidates(self) -> np.ndarray:
        """[users, 1 + n] service rows: the positive first, -1 for padding."""
        return np.concatenate([self.positives[:, None], self.negatives], axis=1)


@dataclass(frozen=True)
class Split:
    train_users: np.ndarray
    train_services: np.ndarray
    train_keys: np.ndarray  # sorted keys of training pairs
    train_recency: np.ndarray  # (position + 1) / training positives of the user, in (0, 1]
    accessed_keys: np.ndarray  # sorted keys of every positive pair (all splits)
    valid: HeldOut
    test: HeldOut
    tune: HeldOut  # part of `valid`: settings are chosen here
    gate: HeldOut  # the rest of `valid`: promotion and the champion are decided here
    key: str  # identifies the data and seed: models trained on the same split share it

    def train_counts(self, width: int) -> np.ndarray:
        """Training positives per service row: the popularity baseline."""
        return np.bincount(self.train_services, minlength=width).astype(np.float64)


def unique_in_order(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))


def build_interactions(
    accessed: Iterable[tuple[int, list[int]]], services: Iterable[tuple[int, bool]]
) -> Interactions:
    """From (user id, accessed services oldest first) and (service id, recommendable) pairs."""
    services = list(services)
    all_ids = np.fromiter((sid for sid, _ in services), dtype=np.int64, count=len(services))
    pool_ids = np.fromiter((sid for sid, ok in services if ok), dtype=np.int64)
    all_ids.sort()
    lists = []
    for user_id, services_of in accessed:
        kept = np.asarray(unique_in_order(services_of or []), dtype=np.int64)
        pos = np.minimum(np.searchsorted(all_ids, kept), max(len(all_ids) - 1, 0))
        kept = kept[all_ids[pos] == kept] if len(all_ids) else kept[:0]
        if len(kept):
            lists.append((user_id, kept))
    lists.sort(key=lambda item: item[0])
    user_ids = np.fromiter((uid for uid, _ in lists), dtype=np.int64, count=len(lists))
    lengths = np.fromiter((len(kept) for _, kept in lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(
        chain.from_iterable(kept for _, kept in lists), dtype=np.int64, count=int(lengths.sum())
    )
    service_index = IdIndex(np.union1d(pool_ids, flat))
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return Interactions(
        users=IdIndex(user_ids),
        services=service_index,
        recommendable=service_index.rows(np.unique(pool_ids)),
        user_rows=np.repeat(np.arange(1, len(user_ids) + 1), lengths),
        service_rows=service_index.rows(flat),
        position=np.arange(len(flat)) - starts,
        length=np.repeat(lengths, lengths),
    )


def evaluation_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, EVALUATION_STREAM])


def keys(users: np.ndarray, services: np.ndarray, width: int) -> np.ndarray:
    return np.unique(users * width + services)


def _per_user_cumsum(flags: np.ndarray, data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """(flags up to and including each positive within its user, the user's total)."""
    total = np.cumsum(flags)
    start = np.arange(len(flags)) - data.position  # index of the user's first positive
    before = total[start] - flags[start]
    end = start + data.length - 1
    return total - before, total[end] - before


def split(
    data: Interactions,
    seed: int,
    negatives: int = DEFAULT_NEGATIVES,
    min_positives: int = MIN_POSITIVES,
    gate_share: float = GATE_SHARE,
) -> Split:
    """The split, negatives and tune/gate parts described in the module doc."""
    in_pool = data.in_pool()[data.service_rows]
    seen, pool_total = _per_user_cumsum(in_pool.astype(np.int64), data)
    from_end = pool_total - seen  # pool positives after this one, within the user
    evaluated = (data.length >= min_positives) & (pool_total >= 2)
    test = evaluated & in_pool & (from_end == 0)
    valid = evaluated & in_pool & (from_end == 1)
    train = ~(test | valid)
    train_seen, train_total = _per_user_cumsum(train.astype(np.int64), data)
    accessed_keys = keys(data.user_rows, data.service_rows, data.width)
    rng = evaluation_rng(seed)

    def held_out(mask: np.ndarray) -> HeldOut:
        users = data.user_rows[mask]
        sampled = sample_excluding(
            rng, users, data.recommendable, accessed_keys, negatives, data.width, replace=False
        )
        return HeldOut(users, data.service_rows[mask], sampled)

    held_valid, held_test = held_out(valid), held_out(test)
    gate = rng.random(len(held_valid.users)) < gate_share
    train_keys = keys(data.user_rows[train], data.service_rows[train], data.width)
    key = zlib.crc32(train_keys.tobytes(), zlib.crc32(held_test.positives.tobytes(), seed))
    return Split(
        train_users=data.user_rows[train],
        train_services=data.service_rows[train],
        train_keys=train_keys,
        train_recency=(train_seen / np.maximum(train_total, 1))[train],
        accessed_keys=accessed_keys,
        valid=held_valid,
        test=held_test,
        tune=held_valid.subset(~gate),
        gate=held_valid.subset(gate),
        key=f"{seed}-{len(data.services)}-{key:08x}",
    )


def capped(split_: Split, max_users: int, seed: int) -> Split:
    """`split_` with its tune, gate and test parts cut to at most `max_users` users each (a
    seeded choice; 0: no cap): enough users for a metric's standard error of about 0.01, at a
    fraction of the cost on large catalogues. The split key is unchanged."""
    if max_users <= 0:
        return split_
    rng = evaluation_rng(seed + 1)

    def cut(held: HeldOut) -> HeldOut:
        if len(held.users) <= max_users:
            return held
        return held.subset(np.sort(rng.choice(len(held.users), max_users, replace=False)))

    return replace(split_, tune=cut(split_.tune), gate=cut(split_.gate), test=cut(split_.test))


def score_blocks(score: Scorer, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """`score` over (users, items [n, m]) a block of users at a time; -1 items score -inf."""
    out = np.full(items.shape, -np.inf, dtype=np.float64)
    rows = max(1, BLOCK_PAIRS // max(items.shape[1], 1))
    for start in range(0, len(users), rows):
        block = items[start : start + rows]
        scores = np.asarray(score(users[start : start + rows], np.maximum(block, 0)))
        out[start : start + rows] = np.where(block < 0, -np.inf, scores)
    return out


def sampled_metrics(
    score: Scorer, held: HeldOut, ks: Sequence[int] = DEFAULT_KS, seed: int = 0
) -> dict:
    """HR@K / NDCG@K of the held-out items against their sampled negatives."""
    items = held.candidates()
    scores = score_blocks(score, held.users, items)
    require_finite(scores[items >= 0], "scores of the held-out candidates")
    return ranking_metrics(
        positive_ranks(scores[:, 0], scores[:, 1:], np.random.default_rng(seed)), ks
    )


def full_metrics(
    score: Scorer,
    data: Interactions,
    split_: Split,
    held: HeldOut,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    full_users: int | None = None,
) -> dict:
    """HR@K, NDCG@K, Recall@K and MRR of each held-out item among every pool service the user
    never accessed, and catalogue coverage of the top-10s (share of the pool that appears in at
    least one user's top 10); on at most `full_users` users (seeded choice)."""
    chosen = np.arange(len(held.users))
    if full_users is not None and full_users < len(chosen):
        chosen = np.sort(evaluation_rng(seed).choice(chosen, full_users, replace=False))
    held = held.subset(chosen)
    pool = data.recommendable
    ranks = np.empty(len(held.users), dtype=np.int64)
    shown = np.zeros(data.width, dtype=bool)
    rows = max(1, BLOCK_PAIRS // max(len(pool), 1))
    rng = np.random.default_rng(seed)
    for start in range(0, len(held.users), rows):
        users = held.users[start : start + rows]
        positives = held.positives[start : start + rows]
        items = np.broadcast_to(pool, (len(users), len(pool)))
        scores = np.asarray(score(users, items), dtype=np.float64)
        require_finite(scores, "full-catalogue scores")
        is_positive = items == positives[:, None]
        seen = contains_sorted(split_.accessed_keys, users[:, None] * data.width + items)
        positive_score = scores[is_positive]
        scores = np.where(seen, -np.inf, scores)  # other positives are not candidates
        ranks[start : start + rows] = positive_ranks(positive_score, scores, rng)
        scores[is_positive] = positive_score
        top = np.argpartition(-scores, min(COVERAGE_K, len(pool)) - 1, axis=1)[:, :COVERAGE_K]
        shown[pool[top]] = True
    result = full_catalogue_metrics(ranks, ks)
    result[f"coverage@{COVERAGE_K}"] = float(shown.sum() / max(len(pool), 1))
    return result


def held_out_metrics(
    score: Scorer,
    data: Interactions,
    split_: Split,
    held: HeldOut,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    full_users: int | None = 0,
) -> dict:
    """Sampled metrics, plus full-catalogue ones under "full" unless `full_users` is 0."""
    result = sampled_metrics(score, held, ks, seed)
    if full_users != 0:
        result["full"] = full_metrics(score, data, split_, held, ks, seed, full_users)
    return result


def promotion_problem(
    ours: dict, baseline: dict, metric: str, margin: float, min_users: int, name: str
) -> str | None:
    """Why `ours` must not be promoted over `baseline` (both metrics of the gate part), or None:
    at least `min_users` gate users, and `metric` above the baseline's by at least `margin`."""
    if ours["users"] < min_users:
        return f"{ours['users']} gate user(s) to judge {name} on (at least {min_users} needed)"
    if not ours[metric] >= baseline[metric] + margin:
        return (
            f"{name} gate {metric} {ours[metric]:.4f} does not beat Popularity's "
            f"{baseline[metric]:.4f} by the margin {margin}"
        )
    return None
