"""The NCF training loop on arrays: fresh negatives each epoch, large shuffled batches,
BCE-with-logits, early stopping on validation HR@10 (the best epoch's weights are kept)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional

from recommender.engines.metrics import DEFAULT_KS, score_metrics
from recommender.engines.ncf.data import HeldOut, Interactions, Split, training_negatives
from recommender.engines.ncf.model import UNKNOWN, NCFModel, NCFShape

EARLY_STOPPING_METRIC = "hr@10"


@dataclass(frozen=True)
class TrainConfig:
    negatives: int = 4  # sampled negatives per positive, per epoch
    max_epochs: int = 30
    patience: int = 3  # epochs without a validation HR@10 gain before stopping
    batch_size: int = 2048
    min_batches: int = 16  # optimiser steps per epoch, at least (small catalogues)
    lr: float = 2e-3
    weight_decay: float = 0.0
    embedding_l2: float = 1e-6  # on the id embeddings of each batch (sparse, so per batch)
    id_dropout: float = 0.25  # share of ids trained as "unknown" (the cold-start path)
    eval_batch_users: int = 2048


@dataclass
class FitResult:
    model: NCFModel
    best_epoch: int
    epochs: int
    best_valid: dict
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


class Scorer:
    """Scores (user row, service row) pairs of one model with its content matrices."""

    def __init__(
        self,
        model: NCFModel,
        user_content: torch.Tensor,
        service_content: torch.Tensor,
        device: torch.device,
    ):
        self.model = model
        self.user_content = user_content
        self.service_content = service_content
        self.device = device

    def logits(
        self,
        users: torch.Tensor,
        services: torch.Tensor,
        id_users: torch.Tensor | None = None,
        id_services: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Content always from the real rows; ids from `id_*` when given (id dropout)."""
        return self.model(
            users if id_users is None else id_users,
            services if id_services is None else id_services,
            self.user_content[users],
            self.service_content[services],
        )

    @torch.no_grad()
    def held_out_scores(self, held: HeldOut, batch_users: int) -> tuple[np.ndarray, np.ndarray]:
        """(positive scores [n], negative scores [n, m]); padded negatives score -inf."""
        self.model.eval()
        items = np.concatenate([held.positives[:, None], held.negatives], axis=1)
        scores = np.empty(items.shape, dtype=np.float32)
        for start in range(0, len(items), batch_users):
            block = items[start : start + batch_users]
            users = np.repeat(held.users[start : start + batch_users], block.shape[1])
            logits = self.logits(
                torch.from_numpy(users).to(self.device),
                torch.from_numpy(np.maximum(block, UNKNOWN).reshape(-1)).to(self.device),
            )
            scores[start : start + len(block)] = logits.cpu().numpy().reshape(block.shape)
        scores[items < 0] = -np.inf
        return scores[:, 0], scores[:, 1:]


def held_out_metrics(scorer: Scorer, held: HeldOut, batch_users: int, seed: int) -> dict:
    positive, negatives = scorer.held_out_scores(held, batch_users)
    return score_metrics(positive, negatives, DEFAULT_KS, np.random.default_rng(seed))


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
    scorer = Scorer(
        model,
        torch.from_numpy(user_content).to(device),
        torch.from_numpy(service_content).to(device),
        device,
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: dict[str, list[float]] = {"train_loss": [], "valid_hr@10": [], "valid_ndcg@10": []}
    best_state, best_valid, best_epoch, stale = None, None, 0, 0
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        loss = _epoch(scorer, optimiser, data, split, config, rng, generator)
        valid = held_out_metrics(scorer, split.valid, config.eval_batch_users, epoch)
        history["train_loss"].append(loss)
        history["valid_hr@10"].append(valid["hr@10"])
        history["valid_ndcg@10"].append(valid["ndcg@10"])
        if on_epoch is not None:
            on_epoch(epoch, loss, valid)
        if best_valid is None or valid[EARLY_STOPPING_METRIC] > best_valid[EARLY_STOPPING_METRIC]:
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
    neg_users, neg_services = training_negatives(rng, data, split, config.negatives)
    users = torch.from_numpy(np.concatenate([split.train_users, neg_users]))
    services = torch.from_numpy(np.concatenate([split.train_services, neg_services]))
    labels = torch.cat([torch.ones(len(split.train_users)), torch.zeros(len(neg_users))]).to(
        scorer.device
    )
    order = torch.from_numpy(rng.permutation(len(users)))
    total, device = 0.0, scorer.device
    size = max(1, min(config.batch_size, math.ceil(len(order) / config.min_batches)))
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        batch_users, batch_services = users[batch].to(device), services[batch].to(device)
        id_users = _dropout(batch_users, config.id_dropout, generator)
        id_services = _dropout(batch_services, config.id_dropout, generator)
        logits = scorer.logits(batch_users, batch_services, id_users, id_services)
        loss = functional.binary_cross_entropy_with_logits(logits, labels[batch])
        if config.embedding_l2 > 0:
            loss = loss + config.embedding_l2 * _embedding_norm(scorer.model, id_users, id_services)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / max(len(order), 1)


def _embedding_norm(model: NCFModel, users: torch.Tensor, services: torch.Tensor) -> torch.Tensor:
    """Squared L2 of the id embeddings a batch touches, per pair (MF-style regularisation)."""
    squared = (
        model.gmf_user(users).pow(2).sum()
        + model.gmf_service(services).pow(2).sum()
        + model.mlp_user(users).pow(2).sum()
        + model.mlp_service(services).pow(2).sum()
    )
    return squared / len(users)
