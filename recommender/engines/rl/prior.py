"""Where the actor starts: a direction over the candidate features fitted to the logged clicks.

The actor's weights are a fixed prior direction plus a learned correction (networks.Actor). The
interest-overlap rule is one such direction; the training logs say more. Over every showing of
the training split (both panels), a logistic regression of "the shown service was clicked" on

    a x rule(features) + beta . features + one offset per (panel, position)

where rule(features) is the rule's score (RULE_PRIOR's direction): the offsets take the
positions' own pull, which a ranking cannot use, and only beta, the departure from the rule, is
penalised (L2). Its penalty is chosen from PENALTIES by the log-loss of FOLDS-fold
cross-validation over the training requests, so that few or noisy logs keep beta small (the
direction is then the rule's wherever the rule's score itself predicts clicks, a > 0) and
plentiful ones move it as far as they support. The prior is a x rule + beta, scaled to unit
length; when the logs predict nothing (a and beta near 0) its direction means little, and the
rule's own ranking, a floor on validation (pipeline.py), is what guards against it. The
actor-critic then corrects it per state as far as its critic's evidence goes, and validation
keeps the untrained direction (epoch 0) when training does not improve on it.

A training request's features leave its own outcomes out (candidates.Tallies), as in the
actor-critic's own training. Without both clicked and unclicked showings nothing can be
fitted: the rule's direction is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit
from sklearn.metrics import log_loss

from recommender.engines.rl.candidates import (
    FEATURES,
    RULE_PRIOR,
    ServiceTable,
    Tallies,
    candidate_features,
    features_at,
)
from recommender.engines.rl.data import Requests, UserSpace
from recommender.evaluation.offpolicy import newton_logistic

BATCH = 1024  # requests per feature batch (bounds the [B, C, F] tensor)
PENALTIES = (1.0, 10.0, 100.0, 1000.0)
FOLDS = 5
RIDGE = 1e-6  # on the unpenalised columns: a finite fit even when a position is all clicks
RULE = np.asarray(RULE_PRIOR) / np.linalg.norm(RULE_PRIOR)


@dataclass(frozen=True)
class Showings:
    """The logged showings of the training requests, one row each."""

    features: np.ndarray  # float [n, F]
    slots: np.ndarray  # int [n]: which (panel, position) it was shown at
    clicked: np.ndarray  # bool [n]
    requests: np.ndarray  # int [n]: which request (numbered across panels)

    def design(self) -> np.ndarray:
        """[n, 1 + F + slots]: the rule's score, the features, a one-hot of the slot."""
        offsets = np.eye(int(self.slots.max(initial=0)) + 1)[self.slots]
        return np.hstack([(self.features @ RULE)[:, None], self.features, offsets])


@dataclass(frozen=True)
class Prior:
    direction: tuple[float, ...]  # unit, over FEATURES
    penalty: float | None  # the one cross-validation chose; None: nothing fitted (the rule)
    losses: dict[float, float]  # cross-validated log-loss per penalty tried
    showings: int

    def as_dict(self) -> dict:
        return {
            "direction": dict(zip(FEATURES, self.direction, strict=True)),
            "penalty": self.penalty,
            "cv_log_loss": {str(p): loss for p, loss in self.losses.items()},
            "showings": self.showings,
        }


def shown_examples(
    panels: Mapping[int, Requests], users: UserSpace, table: ServiceTable, tallies: Tallies | None
) -> Showings:
    """Every logged showing of the `panels`' requests (by K)."""
    parts: list[tuple[np.ndarray, ...]] = []
    slot_base, request_base = 0, 0
    for k, data in sorted(panels.items()):
        for index in torch.arange(len(data)).split(BATCH):
            batch = data.batch(index)
            every = candidate_features(table, batch.states(users), batch.candidates)
            if tallies is not None:
                every = tallies.held_out(every, batch.candidates, batch.shown, batch.values)
            shown = batch.shown.numpy()
            logged = shown >= 0
            request, position = np.nonzero(logged)
            parts.append(
                (
                    features_at(every, shown)[logged],
                    slot_base + position,
                    batch.values.numpy()[logged] > 0,
                    request_base + index.numpy()[request],
                )
            )
        slot_base, request_base = slot_base + k, request_base + len(data)
    if not parts:
        empty = np.zeros(0, np.int64)
        return Showings(np.zeros((0, len(FEATURES))), empty, np.zeros(0, bool), empty)
    features, slots, clicked, requests = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    return Showings(features.astype(np.float64), slots, clicked, requests)


def fitted_prior(
    panels: Mapping[int, Requests],
    users: UserSpace,
    table: ServiceTable,
    tallies: Tallies | None = None,
    seed: int = 0,
    penalties: tuple[float, ...] = PENALTIES,
) -> Prior:
    """The actor's starting direction fit on the `panels`' logged showings (module doc)."""
    showings = shown_examples(panels, users, table, tallies)
    if showings.clicked.all() or not showings.clicked.any():
        return Prior(RULE_PRIOR, None, {}, len(showings.clicked))
    design, clicked = showings.design(), showings.clicked.astype(np.float64)
    folds = np.random.default_rng(seed).permutation(int(showings.requests.max()) + 1) % FOLDS
    fold = folds[showings.requests]
    losses = {p: _cross_validated(design, clicked, fold, p) for p in penalties}
    penalty = min(losses, key=losses.__getitem__)
    theta = newton_logistic(design, clicked, _penalties(design.shape[1], penalty))
    direction = theta[0] * RULE + theta[1 : 1 + len(FEATURES)]
    norm = float(np.linalg.norm(direction))
    if not np.isfinite(norm) or norm == 0.0:
        return Prior(RULE_PRIOR, None, losses, len(clicked))
    return Prior(tuple(float(w) for w in direction / norm), penalty, losses, len(clicked))


def _penalties(columns: int, penalty: float) -> np.ndarray:
    """L2 per design column: the features' (beta) penalised, the rule's and the slots' not."""
    out = np.full(columns, RIDGE)
    out[1 : 1 + len(FEATURES)] = penalty
    return out


def _cross_validated(design: np.ndarray, clicked: np.ndarray, fold: np.ndarray, penalty) -> float:
    """Mean held-out log-loss over the folds (a fold without showings is skipped)."""
    losses = []
    for held in np.unique(fold):
        train, test = fold != held, fold == held
        theta = newton_logistic(design[train], clicked[train], _penalties(design.shape[1], penalty))
        losses.append(log_loss(clicked[test], expit(design[test] @ theta), labels=[0.0, 1.0]))
    return float(np.mean(losses))
