"""The TD3 networks: history embedder, actor and twin critics, plus Polyak averaging.

Spaces: a service is a feature vector of width D (its unit embedding and its log popularity,
renormalised; see data.py). An action is K unit weight vectors in that space; service k is the
candidate best aligned with weight vector k (selection.py). Nothing here depends on how many
services exist: the actor sees the user, the last N services of the history and nothing else,
so services added after training are scored by their features alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional


@dataclass(frozen=True)
class Shape:
    k: int  # services per recommendation
    user_dim: int  # UE
    service_dim: int  # D (embedding width + the popularity feature)
    history_len: int = 5  # N
    history_dim: int = 128
    hidden: tuple[int, ...] = (256, 256)

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, data: dict) -> Shape:
        return cls(**{**data, "hidden": tuple(data["hidden"])})

    @property
    def state_dim(self) -> int:
        return self.user_dim + self.history_dim


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear-BatchNorm-ReLU blocks (the original's builder); the caller adds the output layer."""
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.ReLU()]
    return nn.Sequential(*layers)


class HistoryEmbedder(nn.Module):
    """The last N services' features [B, N, D] (most recent last, zero-padded) -> [B, H]."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(shape.history_len * shape.service_dim, 256),
            nn.ReLU(),
            nn.Linear(256, shape.history_dim),
            nn.ReLU(),
        )

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.net(history.flatten(1))


class StateEncoder(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.history = HistoryEmbedder(shape)

    def forward(self, user: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        return torch.cat([user, self.history(history)], dim=1)


class Actor(nn.Module):
    """State -> K unit weight vectors [B, K, D]."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape
        self.state = StateEncoder(shape)
        self.body = mlp([shape.state_dim, *shape.hidden])
        self.head = nn.Linear(shape.hidden[-1], shape.k * shape.service_dim)

    def forward(self, user: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        raw = self.head(self.body(self.state(user, history)))
        return functional.normalize(raw.view(-1, self.shape.k, self.shape.service_dim), dim=-1)


class Critic(nn.Module):
    """Q(state, action): the state, the K weight vectors, and their products with a projection
    of the state (so user-service affinity is one multiplication away, not learned from sums)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.state = StateEncoder(shape)
        self.project = nn.Linear(shape.state_dim, shape.service_dim)
        width = shape.state_dim + 2 * shape.k * shape.service_dim
        self.body = mlp([width, *shape.hidden])
        self.head = nn.Linear(shape.hidden[-1], 1)

    def forward(self, user: torch.Tensor, history: torch.Tensor, action: torch.Tensor):
        state = self.state(user, history)
        affinity = self.project(state).unsqueeze(1) * action
        features = torch.cat([state, action.flatten(1), affinity.flatten(1)], dim=1)
        return self.head(self.body(features)).squeeze(-1)


@torch.no_grad()
def polyak(target: nn.Module, online: nn.Module, keep: float) -> None:
    """target <- keep * target + (1 - keep) * online, for parameters AND buffers.

    Float buffers (BatchNorm running statistics) are averaged like parameters; integer ones
    (`num_batches_tracked`) are copied. Without this a target net in eval mode would normalise
    with its initial statistics forever.
    """
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, 1.0 - keep)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        if t.is_floating_point():
            t.lerp_(o, 1.0 - keep)
        else:
            t.copy_(o)
