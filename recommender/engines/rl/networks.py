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
    history_dim: int = 64
    hidden: tuple[int, ...] = (128, 128)
    dropout: float = 0.3  # critics only: rewards are noisy and logs are small

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, data: dict) -> Shape:
        return cls(**{**data, "hidden": tuple(data["hidden"])})

    @property
    def state_dim(self) -> int:
        return self.user_dim + self.history_dim


def mlp(sizes: list[int], dropout: float | None = None) -> nn.Sequential:
    """Hidden blocks; the caller adds the output layer. Linear-BatchNorm-ReLU (the original's
    builder), or Linear-ReLU-Dropout when `dropout` is given."""
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        if dropout is None:
            layers += [nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.ReLU()]
        else:
            layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class HistoryEmbedder(nn.Module):
    """The last N services' features [B, N, D] (most recent last, zero-padded) -> [B, H].

    A learned weight per position (recency) pools the N services into one D-vector, then one
    layer maps it to H. Few parameters: a history is a handful of services, and a
    flatten-into-an-MLP embedder (the original's) memorises the training users instead.
    """

    def __init__(self, shape: Shape):
        super().__init__()
        self.recency = nn.Parameter(torch.full((shape.history_len,), 1.0 / shape.history_len))
        self.net = nn.Sequential(nn.Linear(shape.service_dim, shape.history_dim), nn.ReLU())

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.net(torch.einsum("bnd,n->bd", history, self.recency))


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
    """Q(state, action) as the mean of one learned value per weight vector (slot).

    A recommendation's reward is a mean over its K services, so one slot network is shared by
    the K slots: K times the data per parameter, and nothing to learn about slot order. The
    slot network sees the state, the weight vector and their product with a projection of the
    state (user-service affinity is one multiplication away, not learned from sums); dropout,
    because logged rewards are noisy and few.
    """

    def __init__(self, shape: Shape):
        super().__init__()
        self.state = StateEncoder(shape)
        self.project = nn.Linear(shape.state_dim, shape.service_dim)
        self.body = mlp([shape.state_dim + 2 * shape.service_dim, *shape.hidden], shape.dropout)
        self.head = nn.Linear(shape.hidden[-1], 1)

    def slots(self, user: torch.Tensor, history: torch.Tensor, action: torch.Tensor):
        """[B, K]: the value of each slot."""
        state = self.state(user, history)
        batch, k, _ = action.shape
        affinity = self.project(state).unsqueeze(1) * action
        expanded = state.unsqueeze(1).expand(batch, k, state.shape[1])
        slots = torch.cat([expanded, action, affinity], dim=2).reshape(batch * k, -1)
        return self.head(self.body(slots)).view(batch, k)

    def forward(self, user: torch.Tensor, history: torch.Tensor, action: torch.Tensor):
        return self.slots(user, history, action).mean(dim=1)


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
