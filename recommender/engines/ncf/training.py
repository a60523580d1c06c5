"""The NCF training loop on arrays: fresh negatives each epoch, large shuffled batches,
BCE-with-logits, early stopping on the tune part of validation (HR@10, ties by NDCG@10; the best
epoch's weights are kept). A loss that is not finite fails the run (`NonFiniteScoresError`).

Positives are weighted by recency within the user's history (linearly by default, mean 1): the
next order resembles the latest ones more than the oldest, which lifts NDCG on MovieLens.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional

from recommender.engines.ncf.data import Histories, train_histories, training_negatives
from recommender.engines.ncf.model import NCFModel, NCFShape
from recommender.evaluation.protocol import (
    HeldOut,
    Interactions,
    Split,
    require_finite,
    sampled_metrics,
)
from recommender.id_index import UNKNOWN

# Early stopping compares validation HR@10, ties (frequent on small catalogues) by NDCG@10.
EARLY_STOPPING_METRICS = ("hr@10", "ndcg@10")


@dataclass(frozen=True)
class TrainConfig:
    negatives: int = 8  # sampled negatives per positive, per epoch
    recency: float = 1.0  # positives weigh recency ** this (mean 1): later orders count more
    max_epochs: int = 30
    patience: int = 3  # epochs without a validation gain before stopping (see _key)
    batch_size: int = 2048
    min_batches: int = 16  # optimiser steps per epoch, at least (small catalogues)
    max_batches: int = 512  # and at most: larger batches on large ones (an Adam step touches
    # every embedding row, so the number of steps, not the batch, sets the cost)
    lr: float = 2e-3
    weight_decay: float = 0.0
    id_dropout: float = 0.05  # share of ids trained as "unknown" (the cold-start path)


@dataclass
class FitResult:
    model: NCFModel
    best_epoch: int
    epochs: int
    best_valid: dict
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


class Scorer:
    """Scores (user row, service row) pairs of one model with its content matrices and the
    users' histories (their training positives)."""

    def __init__(
        self,
        model: NCFModel,
        user_content: torch.Tensor,
        service_content: torch.Tensor,
        histories: Histories,
        device: torch.device,
    ):
        self.model = model
        self.user_content = user_content
        self.service_content = service_content
        self.histories = histories
        self.device = device

    def logits(
        self,
        users: torch.Tensor,
        services: torch.Tensor,
        id_users: torch.Tensor | None = None,
        id_services: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Content and history always from the real rows; ids from `id_*` when given (id
        dropout). With `labels` (training: every positive is in its user's history), a
        positive's own service is left out of that history, so the model cannot learn "in the
        history, hence positive"."""
        return self.model(
            users if id_users is None else id_users,
            services if id_services is None else id_services,
            self.user_content[users],
            self.service_content[services],
            self._history(users, services, labels),
        )

    def _history(
        self,
        users: torch.Tensor,
        services: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean history row per entry of `users`, computed once per distinct user; given the
        pairs' `services` and `labels` (training), a positive's own service is left out."""
        distinct, inverse = torch.unique(users, return_inverse=True)
        rows = distinct.cpu().numpy()
        items, offsets = self.histories.bags(rows)
        sums = self.model.history_sums(
            torch.from_numpy(items).to(self.device), torch.from_numpy(offsets).to(self.device)
        )[inverse]
        counts = torch.from_numpy(self.histories.counts(rows)).to(self.device)[inverse].float()
        if services is not None and labels is not None:
            sums = sums - labels[:, None] * self.model.history(services)
            counts = counts - labels
        return sums / counts.clamp(min=1.0)[:, None]

    @torch.no_grad()
    def __call__(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits of user rows [n] over service rows [n, m] (the protocol's scorer), by the
        pass serving takes (`forward_users`); the service parts are computed per call, as the
        model changes between calls in training."""
        self.model.eval()
        user_rows = torch.from_numpy(users).to(self.device)
        service_rows = torch.from_numpy(np.ascontiguousarray(items)).to(self.device)
        parts = self.model.service_parts(self.service_content)
        logits = self.model.forward_users(
            user_rows,
            self.user_content[user_rows],
            self._history(user_rows),
            service_rows,
            parts.take(service_rows.reshape(-1)),
        )
        return logits.cpu().numpy()


def make_scorer(
    model: NCFModel,
    data: Interactions,
    split: Split,
    user_content: np.ndarray,
    service_content: np.ndarray,
    device: torch.device,
) -> Scorer:
    return Scorer(
        model,
        torch.from_numpy(user_content).to(device),
        torch.from_numpy(service_content).to(device),
        train_histories(data, split),
        device,
    )


def held_out_metrics(scorer: Scorer, held: HeldOut, seed: int) -> dict:
    return sampled_metrics(scorer, held, seed=seed)


def _key(metrics: dict) -> tuple[float, ...]:
    return tuple(metrics[name] for name in EARLY_STOPPING_METRICS)


def _dropout(rows: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    if p <= 0:
        return rows
    drop = torch.rand(rows.shape, generator=generator) < p
    return torch.where(drop.to(rows.device), torch.full_like(rows, UNKNOWN), rows)


def fit(
    data: Interactions,
    split: Split,
    user_content: np.ndarray,
    service_content: np.ndarray,
    shape: NCFShape,
    config: TrainConfig,
    device: torch.device,
    rng: np.random.Generator,
    generator: torch.Generator,
    on_epoch: Callable[[int, float, dict], None] | None = None,
) -> FitResult:
    """Train; `user_content`/`service_content` are aligned with the user/service rows."""
    started = time.perf_counter()
    model = NCFModel(shape).to(device)
    scorer = make_scorer(model, data, split, user_content, service_content, device)
    # Fused: one pass over every parameter per step instead of one per operation; a step
    # touches every embedding row, so this is most of an epoch's optimiser time.
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
    )
    history: dict[str, list[float]] = {"train_loss": [], "valid_hr@10": [], "valid_ndcg@10": []}
    best_state, best_valid, best_epoch, stale = None, None, 0, 0
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        loss = _epoch(scorer, optimiser, data, split, config, rng, generator)
        require_finite(loss, f"NCF training loss at epoch {epoch}")
        valid = held_out_metrics(scorer, split.tune, epoch)
        history["train_loss"].append(loss)
        history["valid_hr@10"].append(valid["hr@10"])
        history["valid_ndcg@10"].append(valid["ndcg@10"])
        if on_epoch is not None:
            on_epoch(epoch, loss, valid)
        if best_valid is None or _key(valid) > _key(best_valid):
            best_state = copy.deepcopy(model.state_dict())
            best_valid, best_epoch, stale = valid, epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model, best_epoch, epoch, best_valid or {}, history, time.perf_counter() - started
    )


def _examples(
    data: Interactions, split: Split, config: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, services, labels, weights) of one epoch: every training positive, weighted by
    recency (mean weight 1), and `negatives` fresh negatives per positive (weight 1)."""
    neg_users, neg_services = training_negatives(rng, data, split, config.negatives)
    recency = split.train_recency**config.recency
    n_pos, n_neg = len(split.train_users), len(neg_users)
    return (
        np.concatenate([split.train_users, neg_users]),
        np.concatenate([split.train_services, neg_services]),
        np.concatenate([np.ones(n_pos), np.zeros(n_neg)]).astype(np.float32),
        np.concatenate([recency / recency.mean(), np.ones(n_neg)]).astype(np.float32),
    )


def _epoch(
    scorer: Scorer,
    optimiser: torch.optim.Optimizer,
    data: Interactions,
    split: Split,
    config: TrainConfig,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> float:
    """One pass over the training positives with freshly sampled negatives; the mean loss."""
    scorer.model.train()
    device = scorer.device
    users, services, labels, weights = (
        torch.from_numpy(array).to(device) for array in _examples(data, split, config, rng)
    )
    order = torch.from_numpy(rng.permutation(len(users))).to(device)
    size = min(config.batch_size, math.ceil(len(order) / config.min_batches))
    size = max(1, size, math.ceil(len(order) / config.max_batches))
    total = 0.0
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        batch_users, batch_services = users[batch], services[batch]
        logits = scorer.logits(
            batch_users,
            batch_services,
            _dropout(batch_users, config.id_dropout, generator),
            _dropout(batch_services, config.id_dropout, generator),
            labels[batch],
        )
        loss = functional.binary_cross_entropy_with_logits(
            logits, labels[batch], weight=weights[batch]
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / max(len(order), 1)
