"""The actor-critic networks over candidate features (candidates.py).

- Actor: state -> a unit weight vector over the F candidate features (the continuous action);
  the policy serves the K candidates with the highest features @ weights.
- Critic: q(s, c, j), the expected value of candidate c shown at position j: a sigmoid of one
  MLP over [state, features of c] plus a learned offset per position (position bias). The
  critic's value of an action, Q(s, w), is the q of each candidate weighted by how likely the
  (softened) policy w is to show it at each position (training.py).
Nothing here depends on how many services exist, so services added after training are scored
by their features alone.
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
    state_dim: int  # see candidates.state_vector
    features: int  # F
    hidden: tuple[int, ...] = (64, 64)

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, data: dict) -> Shape:
        return cls(**{**data, "hidden": tuple(data["hidden"])})


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """State [B, state_dim] -> unit weights [B, F]."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape
        self.body = mlp([shape.state_dim, *shape.hidden])
        self.head = nn.Linear(shape.hidden[-1], shape.features)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return functional.normalize(self.head(self.body(state)), dim=-1)


class Critic(nn.Module):
    """q(s, c, j) for every candidate and position: [B, C, K] in (0, 1)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape
        self.body = mlp([shape.state_dim + shape.features, *shape.hidden])
        self.head = nn.Linear(shape.hidden[-1], 1)
        self.position = nn.Parameter(torch.zeros(shape.k))

    def logits(self, state: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """[B, C] position-free logits."""
        batch, width, _ = features.shape
        expanded = state.unsqueeze(1).expand(batch, width, state.shape[1])
        return self.head(self.body(torch.cat([expanded, features], dim=2))).squeeze(2)

    def forward(self, state: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(state, features).unsqueeze(2) + self.position)
