"""The autoencoder, its training loop, and the encoder that turns features into embeddings.

Encoder: multi-hot row -> hidden (ReLU) -> embedding. Its first layer is an `EmbeddingBag` sum,
which is a Linear layer that only touches the row's non-zero columns, so sparse rows are never
densified on the way in. Decoder: embedding -> hidden (ReLU) -> logits over every feature;
loss: binary cross-entropy with logits, summed over features, averaged over rows (the target is
densified one batch at a time, so 100k rows never become one dense matrix). No batch
normalisation, so a batch of one row trains fine.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse
from torch import nn
from torch.nn import functional

from recommender.engines.autoencoders.features import Vocabulary


@dataclass(frozen=True)
class Shape:
    features: int
    dim: int
    hidden: int

    def as_dict(self) -> dict[str, int]:
        return {"features": self.features, "dim": self.dim, "hidden": self.hidden}


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 30
    patience: int = 3
    steps_per_epoch: int = 64  # batches are sized for about this many optimiser steps...
    batch_size: int = 512  # ...but never larger than this
    lr: float = 3e-3
    weight_decay: float = 1e-5
    min_delta: float = 1e-3  # relative validation improvement that resets patience...
    min_abs_delta: float = 1e-2  # ...and absolute (nats per row): smaller gains are noise
    eval_batch_size: int = 2048

    def batch_for(self, rows: int) -> int:
        """Small catalogues get small batches, so every epoch still takes several steps."""
        return max(1, min(self.batch_size, math.ceil(rows / self.steps_per_epoch)))


@dataclass(frozen=True)
class Batch:
    """CSR rows as EmbeddingBag input (column indices, row offsets) and, for training, dense."""

    indices: torch.Tensor
    offsets: torch.Tensor
    dense: torch.Tensor | None = None

    @classmethod
    def of(
        cls, matrix: sparse.csr_matrix, rows: np.ndarray, device: torch.device, dense: bool
    ) -> Batch:
        part = matrix[rows]
        return cls(
            torch.from_numpy(part.indices.astype(np.int64)).to(device),
            torch.from_numpy(part.indptr[:-1].astype(np.int64)).to(device),
            torch.from_numpy(part.toarray()).to(device) if dense else None,
        )


class Encoder(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.inputs = nn.EmbeddingBag(shape.features, shape.hidden, mode="sum")
        self.bias = nn.Parameter(torch.zeros(shape.hidden))
        self.out = nn.Linear(shape.hidden, shape.dim)
        bound = 1 / math.sqrt(shape.features)  # as nn.Linear(features, hidden) would start
        nn.init.uniform_(self.inputs.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.inputs(indices, offsets) + self.bias))


class AutoEncoder(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape
        self.encoder = Encoder(shape)
        self.decoder = nn.Sequential(
            nn.Linear(shape.dim, shape.hidden), nn.ReLU(), nn.Linear(shape.hidden, shape.features)
        )

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.decoder(self.encoder(batch.indices, batch.offsets))


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the BCE summed over features (nats per row)."""
    total = functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    return total / len(target)


@torch.no_grad()
def mean_loss(
    model: AutoEncoder, matrix: sparse.csr_matrix, batch_size: int, device: torch.device
) -> float:
    """The loss over the WHOLE of `matrix` (every batch, weighted by its rows)."""
    model.eval()
    total = 0.0
    for start in range(0, matrix.shape[0], batch_size):
        rows = np.arange(start, min(start + batch_size, matrix.shape[0]))
        batch = Batch.of(matrix, rows, device, dense=True)
        total += reconstruction_loss(model(batch), batch.dense).item() * len(rows)
    return total / max(matrix.shape[0], 1)


def frequency_baseline(train: sparse.csr_matrix, valid: sparse.csr_matrix) -> float:
    """The validation loss of always predicting each feature's training frequency."""
    p = np.clip(np.asarray(train.mean(axis=0)).ravel(), 1e-6, 1 - 1e-6)
    ones = np.asarray(valid.sum(axis=0)).ravel()
    zeros = valid.shape[0] - ones
    return float(-(ones * np.log(p) + zeros * np.log1p(-p)).sum() / max(valid.shape[0], 1))


def start_from_frequencies(model: AutoEncoder, train: sparse.csr_matrix) -> None:
    """Output biases = each feature's training log-odds: the untrained network starts as the
    frequency baseline, so training only has structure left to learn (and validation asks it
    to beat that start)."""
    p = np.clip(np.asarray(train.mean(axis=0), dtype=np.float64).ravel(), 1e-4, 1 - 1e-4)
    with torch.no_grad():
        model.decoder[-1].bias.copy_(torch.from_numpy(np.log(p / (1 - p))).float())


@dataclass
class FitResult:
    model: AutoEncoder
    best_val_loss: float
    untrained_val_loss: float
    best_epoch: int
    epochs: int
    history: dict[str, list[float]] = field(default_factory=dict)


def fit(
    train: sparse.csr_matrix,
    valid: sparse.csr_matrix,
    shape: Shape,
    config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    on_epoch: Callable[[int, float, float], None] = lambda epoch, train, val: None,
    select: bool = True,
) -> FitResult:
    """Adam from the frequency start; the weights with the best whole-validation loss win.

    With `select` off (a validation split too small to trust), every epoch runs and the last
    weights are kept; the validation loss is still recorded.
    """
    model = AutoEncoder(shape)
    start_from_frequencies(model, train)
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch_size, eval_size = config.batch_for(train.shape[0]), config.eval_batch_size
    untrained = best = mean_loss(model, valid, eval_size, device)
    best_state, best_epoch, waited = copy.deepcopy(model.state_dict()), 0, 0
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        train_loss = train_epoch(model, optimiser, train, batch_size, device, generator)
        val_loss = mean_loss(model, valid, eval_size, device)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        on_epoch(epoch, train_loss, val_loss)
        if not select:
            best, best_epoch = val_loss, epoch
        elif val_loss < best - max(config.min_delta * abs(best), config.min_abs_delta):
            best, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= config.patience:
                break
    if select:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, best, untrained, best_epoch, epoch, history)


def train_epoch(
    model: AutoEncoder,
    optimiser: torch.optim.Optimizer,
    train: sparse.csr_matrix,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator,
) -> float:
    """One shuffled pass over `train`; its mean loss."""
    model.train()
    order = torch.randperm(train.shape[0], generator=generator).numpy()
    total = 0.0
    for start in range(0, len(order), batch_size):
        batch = Batch.of(train, order[start : start + batch_size], device, dense=True)
        loss = reconstruction_loss(model(batch), batch.dense)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch.dense)
    return total / len(order)


class EntityEncoder:
    """Documents or multi-hot rows -> L2-normalised float32 embeddings (no features: zeros)."""

    def __init__(self, vocabulary: Vocabulary, shape: Shape, state: dict[str, torch.Tensor]):
        self.vocabulary = vocabulary
        self.shape = shape
        self.encoder = Encoder(shape)
        self.encoder.load_state_dict(state)
        self.encoder.eval().requires_grad_(False)

    @torch.no_grad()
    def encode(
        self,
        matrix: sparse.csr_matrix,
        batch_size: int = 4096,
        device: torch.device | None = None,
    ) -> np.ndarray:
        device = device or torch.device("cpu")
        encoder = self.encoder.to(device)
        out = np.zeros((matrix.shape[0], self.shape.dim), dtype=np.float32)
        for start in range(0, matrix.shape[0], batch_size):
            rows = np.arange(start, min(start + batch_size, matrix.shape[0]))
            batch = Batch.of(matrix, rows, device, dense=False)
            out[rows] = encoder(batch.indices, batch.offsets).cpu().numpy()
        self.encoder.to("cpu")
        return normalise(out, has_features=np.diff(matrix.indptr) > 0)


def normalise(vectors: np.ndarray, has_features: np.ndarray) -> np.ndarray:
    """Unit L2 rows; rows without features (or of zero norm) become all zeros."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    keep = has_features[:, None] & (norms > 1e-12)
    return np.where(keep, vectors / np.where(keep, norms, 1.0), 0.0).astype(np.float32)
