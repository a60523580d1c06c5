"""Engines that score candidates with one component, served and evaluated through the same code.

A `ScoringComponent` scores many users at once: `batch_scores(user_ids [n], histories,
candidates [n, m]) -> [n, m]`, where `histories` holds each user's accessed service ids. Serving
asks it for one user (`scores`: a batch of one), the offline evaluator for the held-out users of
the evaluation protocol (`component_scorer`), so the evaluated scores are the served ones.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from recommender.engines.base.engine import (
    EngineResult,
    RecommendationContext,
    Scored,
    ServingDeps,
    TrainedEngine,
    same,
)
from recommender.engines.base.interactions import read_interactions
from recommender.evaluation import protocol
from recommender.evaluation.metrics import DEFAULT_KS
from recommender.evaluation.protocol import Interactions, Scorer, Split
from recommender.model_store.versions import NoModelError


@dataclass(frozen=True)
class IdLists:
    """Per user, a list of service ids (CSR)."""

    indptr: np.ndarray  # [users + 1]
    ids: np.ndarray

    @classmethod
    def one(cls, ids: np.ndarray) -> IdLists:
        return cls(np.array([0, len(ids)]), np.asarray(ids, dtype=np.int64))

    @classmethod
    def from_pairs(cls, users: np.ndarray, ids: np.ndarray, rows: int) -> IdLists:
        """From (user row, service id) pairs; rows 0..rows-1."""
        order = np.argsort(users, kind="stable")
        counts = np.bincount(users, minlength=rows)
        return cls(np.concatenate([[0], np.cumsum(counts)]), ids[order])

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def owners(self) -> np.ndarray:
        """The list (0..len-1) of each entry of `ids`."""
        return np.repeat(np.arange(len(self)), self.lengths())

    def take(self, rows: np.ndarray) -> IdLists:
        starts, lengths = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        offsets = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
        return IdLists(np.concatenate([[0], np.cumsum(lengths)]), self.ids[positions])


def latest_entries(
    histories: IdLists, history_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(list, row, entries after it in its list) of each (list, row)'s latest entry: a service
    listed twice counts once, at its latest place."""
    owners = histories.owners()
    after = histories.indptr[1:][owners] - 1 - np.arange(len(history_rows))
    keys = owners * (int(history_rows.max(initial=0)) + 1) + history_rows
    _, latest = np.unique(keys[::-1], return_index=True)
    latest = len(keys) - 1 - latest
    return owners[latest], history_rows[latest], after[latest]


class ScoringComponent(Protocol):
    version: int

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray: ...


def scores_of_one(
    component: ScoringComponent, user_id: int, history: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """The serving call: `batch_scores` for one user."""
    user = np.array([user_id], dtype=np.int64)
    return component.batch_scores(user, IdLists.one(history), candidates[None, :])[0]


def component_scorer(component: ScoringComponent, data: Interactions, split: Split) -> Scorer:
    """The protocol's scorer through `component`; each user's history is their training
    positives (what the model saw of them)."""
    lists = IdLists.from_pairs(
        split.train_users, data.services.ids[split.train_services - 1], data.users.rows_total
    )

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return component.batch_scores(
            data.users.ids[users - 1],
            lists.take(users),
            data.services.ids[items.reshape(-1) - 1].reshape(items.shape),
        )

    return score


def offline_test_metrics(
    deps: ServingDeps, component: ScoringComponent | None, name: str, ks: Sequence[int], seed
) -> dict:
    """Test metrics of a live component as served, on the current database (the protocol's
    split and negatives with TRAINING_SEED, or `seed`)."""
    if component is None:
        raise NoModelError(f"No live {name} model")
    seed = deps.settings.TRAINING_SEED if seed is None else seed
    data = read_interactions()
    split = protocol.split(data, seed)
    return protocol.held_out_metrics(
        component_scorer(component, data, split),
        data,
        split,
        split.test,
        tuple(ks) or DEFAULT_KS,
        seed,
        deps.settings.EVALUATION_FULL_USERS,
    )


class ScoringEngine(TrainedEngine):
    """A logged-in users' engine over a `ScoringComponent`: the top K (or every candidate) by
    score, ties by id."""

    long: ClassVar[str]
    short: ClassVar[str]

    def __init__(self, deps: ServingDeps):
        self.deps = deps

    @abstractmethod
    def component(self) -> ScoringComponent | None: ...

    def scored(self, context: RecommendationContext) -> Scored:
        model = self.component()
        if model is None or context.user_id is None or len(context.candidates) == 0:
            return Scored.empty()
        candidates = np.asarray(context.candidates, dtype=np.int64)
        history = np.asarray(context.accessed_services, dtype=np.int64)
        scores = scores_of_one(model, context.user_id, history, candidates)
        return Scored(candidates, scores, same(self.long, self.short))

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        return self.scored(context).top(k)
