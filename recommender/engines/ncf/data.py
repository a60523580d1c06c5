"""NCF training data on the evaluation protocol's split (recommender.evaluation.protocol):
training negatives and the users' histories.

Training negatives are pool (recommendable) services: `ratio` per positive, drawn afresh each
epoch among services outside the user's *training* positives (so training never sees held-out
items as positives). All indices here are embedding rows of `IdIndex` (1-based; 0 = unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.evaluation.metrics import sample_excluding
from recommender.evaluation.protocol import Interactions, Split


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
