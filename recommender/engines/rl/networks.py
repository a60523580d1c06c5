"""The actor-critic networks over candidate features (candidates.py).

- Actor: state -> a unit weight vector over the F candidate features (the continuous action);
  the policy serves the K candidates with the highest features @ weights. The weights are a
  fixed prior direction (Shape.prior: where training starts, prior.py's click model or the
  interest-overlap rule's ranking) plus a learned, state-dependent correction whose head
  starts at zero: the untrained actor ranks as the prior does, and training moves away from
  it only as far as the critic's evidence pulls. `average`
  merges several actors into one whose correction is the mean of theirs (an ensemble served
  as a single forward pass).
- Critic: q(s, c, j), the expected value of candidate c shown at position j: a sigmoid of one
  MLP over [state, features of c] plus a learned offset per position (position bias). The
  critic's value of an action, Q(s, w), is the q of each candidate weighted by how likely the
  (softened) policy w is to show it at each position (training.py).
Nothing here depends on how many services exist, so services added after training are scored
by their features alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
    # The actor's fixed direction over the features (empty: none, as models trained before it).
    prior: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden), "prior": list(self.prior)}

    @classmethod
    def from_dict(cls, data: dict) -> Shape:
        return cls(
            **{**data, "hidden": tuple(data["hidden"]), "prior": tuple(data.get("prior", ()))}
        )


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """State [B, state_dim] -> unit weights [B, F]: normalise(prior + correction(state))."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape
        self.body = mlp([shape.state_dim, *shape.hidden])
        self.head = nn.Linear(shape.hidden[-1], shape.features)
        prior = torch.tensor(shape.prior or (0.0,) * shape.features, dtype=torch.float32)
        # Not in the state dict: the shape (stored in the model's config) carries it.
        self.register_buffer("prior", prior, persistent=False)
        if shape.prior:  # without a prior, a zero head would leave no direction at all
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return functional.normalize(self.prior + self.head(self.body(state)), dim=-1)


def linears(actor: Actor) -> list[nn.Linear]:
    return [layer for layer in actor.body if isinstance(layer, nn.Linear)]


def average(actors: Sequence[Actor]) -> Actor:
    """One actor whose correction is the mean of the (same-shaped) `actors`' corrections: their
    hidden layers side by side (block-diagonal weights), the head averaging their heads."""
    shape = actors[0].shape
    if any(actor.shape != shape for actor in actors):
        raise ValueError("only actors of one shape can be averaged")
    merged = Actor(replace(shape, hidden=tuple(len(actors) * width for width in shape.hidden)))
    with torch.no_grad():
        for depth, layer in enumerate(linears(merged)):
            members = [linears(actor)[depth] for actor in actors]
            weights = [member.weight for member in members]
            layer.weight.copy_(torch.cat(weights) if depth == 0 else torch.block_diag(*weights))
            layer.bias.copy_(torch.cat([member.bias for member in members]))
        merged.head.weight.copy_(torch.cat([a.head.weight for a in actors], dim=1) / len(actors))
        merged.head.bias.copy_(torch.stack([a.head.bias for a in actors]).mean(dim=0))
    return merged.eval()


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
