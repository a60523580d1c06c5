"""NCF training data: positives, leave-last-out split, sampled negatives, evaluation sets.

Positives are the users' `accessed_services` in dump order (taken as time order), repeats
collapsed to their first occurrence, unknown service ids dropped. Per user with at least
`min_positives` (3) positives, the last one is the test item and the second to last the
validation item; everything before is training data (users with fewer are training-only).

Negatives are recommendable services: for training, `ratio` per positive, drawn afresh each
epoch among services outside the user's *training* positives (so training never sees held-out
items as positives); for evaluation, `n` (99) distinct services the user never accessed at all.
Evaluation negatives come from their own generator, `evaluation_rng(seed)`, so a benchmark can
rebuild exactly the same candidate sets for other models.

All indices here are embedding rows of `IdIndex` (1-based; 0 = unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain

import numpy as np

from recommender.evaluation.metrics import DEFAULT_NEGATIVES, sample_excluding
from recommender.id_index import IdIndex
from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service, User
from recommender.store import get_db

MIN_POSITIVES = 3
EVALUATION_STREAM = 0x4E4346  # mixed into the seed: evaluation sampling is its own stream


@dataclass(frozen=True)
class Interactions:
    users: IdIndex  # users with at least one positive
    services: IdIndex  # recommendable or accessed services
    recommendable: np.ndarray  # service rows that may be recommended (the negative pool)
    user_rows: np.ndarray  # per positive, grouped by user, oldest first
    service_rows: np.ndarray
    position: np.ndarray  # index of the positive in its user's list
    length: np.ndarray  # that user's number of positives

    @property
    def width(self) -> int:
        """Key stride: a (user row, service row) pair is `user * width + service`."""
        return self.services.rows_total


@dataclass(frozen=True)
class HeldOut:
    users: np.ndarray  # user rows, one per evaluated user
    positives: np.ndarray  # the held-out service row of each
    negatives: np.ndarray  # [users, n] service rows never accessed by the user (-1: padding)


@dataclass(frozen=True)
class Split:
    train_users: np.ndarray
    train_services: np.ndarray
    train_keys: np.ndarray  # sorted keys of training pairs
    train_recency: np.ndarray  # (position + 1) / training positives of the user, in (0, 1]
    accessed_keys: np.ndarray  # sorted keys of every positive pair (all splits)
    valid: HeldOut
    test: HeldOut


@dataclass(frozen=True)
class Histories:
    """Per user row, the service rows it accessed (CSR): what the model's history pools."""

    indptr: np.ndarray  # [rows + 1]
    items: np.ndarray  # service rows, grouped by user row

    @classmethod
    def build(cls, users: np.ndarray, services: np.ndarray, rows: int) -> Histories:
        order = np.argsort(users, kind="stable")
        counts = np.bincount(users, minlength=rows)
        return cls(np.concatenate([[0], np.cumsum(counts)]), services[order])

    def counts(self, rows: np.ndarray) -> np.ndarray:
        return self.indptr[rows + 1] - self.indptr[rows]

    def bags(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(items, offsets) of `rows`' histories, flattened in that order (for embedding_bag)."""
        starts, lengths = self.indptr[rows], self.counts(rows)
        offsets = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
        return self.items[positions], offsets


def unique_in_order(values: list[int]) -> list[int]:
    return list(dict.fromkeys(values))


def build_interactions(
    accessed: Iterable[tuple[int, list[int]]], services: Iterable[tuple[int, str | None]]
) -> Interactions:
    """From (user id, accessed services) and (service id, status) pairs."""
    services = list(services)
    all_ids = np.fromiter((sid for sid, _ in services), dtype=np.int64, count=len(services))
    recommendable_ids = np.fromiter(
        (sid for sid, status in services if status in RECOMMENDABLE_STATUSES), dtype=np.int64
    )
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
    service_index = IdIndex(np.union1d(recommendable_ids, flat))
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return Interactions(
        users=IdIndex(user_ids),
        services=service_index,
        recommendable=service_index.rows(np.unique(recommendable_ids)),
        user_rows=np.repeat(np.arange(1, len(user_ids) + 1), lengths),
        service_rows=service_index.rows(flat),
        position=np.arange(len(flat)) - starts,
        length=np.repeat(lengths, lengths),
    )


def read_interactions() -> Interactions:
    """Read users (id, accessed_services) and services (id, status) once each, projected."""
    db = get_db()
    users = db[User._get_collection_name()].find({}, {"accessed_services": 1})
    services = db[Service._get_collection_name()].find({}, {"status": 1})
    return build_interactions(
        ((doc["_id"], doc.get("accessed_services")) for doc in users),
        ((doc["_id"], doc.get("status")) for doc in services),
    )


def evaluation_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, EVALUATION_STREAM])


def _keys(users: np.ndarray, services: np.ndarray, width: int) -> np.ndarray:
    return np.unique(users * width + services)


def split(
    data: Interactions,
    seed: int,
    negatives: int = DEFAULT_NEGATIVES,
    min_positives: int = MIN_POSITIVES,
) -> Split:
    """Leave-last-out split with seeded evaluation negatives (see the module doc)."""
    evaluated = data.length >= min_positives
    test = evaluated & (data.position == data.length - 1)
    valid = evaluated & (data.position == data.length - 2)
    train = ~(test | valid)
    train_length = np.where(evaluated, data.length - 2, data.length)
    accessed_keys = _keys(data.user_rows, data.service_rows, data.width)
    rng = evaluation_rng(seed)

    def held_out(mask: np.ndarray) -> HeldOut:
        users = data.user_rows[mask]
        sampled = sample_excluding(
            rng, users, data.recommendable, accessed_keys, negatives, data.width, replace=False
        )
        return HeldOut(users, data.service_rows[mask], sampled)

    return Split(
        train_users=data.user_rows[train],
        train_services=data.service_rows[train],
        train_keys=_keys(data.user_rows[train], data.service_rows[train], data.width),
        train_recency=((data.position + 1) / train_length)[train],
        accessed_keys=accessed_keys,
        valid=held_out(valid),
        test=held_out(test),
    )


def training_negatives(
    rng: np.random.Generator, data: Interactions, split_: Split, ratio: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user rows, service rows) of `ratio` sampled negatives per training positive."""
    users = np.repeat(split_.train_users, ratio)
    services = sample_excluding(
        rng, split_.train_users, data.recommendable, split_.train_keys, ratio, data.width
    ).reshape(-1)
    keep = services >= 0  # users who accessed every recommendable service get none
    return users[keep], services[keep]


def train_histories(data: Interactions, split_: Split) -> Histories:
    """Each user's training positives: the history the model pools in training and evaluation."""
    return Histories.build(split_.train_users, split_.train_services, data.users.rows_total)


def popularity_counts(data: Interactions, split_: Split) -> np.ndarray:
    """Training positives per service row: the Popularity scorer NCF must beat."""
    return np.bincount(split_.train_services, minlength=data.width).astype(np.float64)
