"""The NCF network: GMF + MLP over id embeddings, a content branch over AE embeddings (an MLP
over both, plus the product of their projections), one linear head. The GMF user vector also
gets the mean of a learned row per service the user accessed (SVD++-style history).

Ids never index the embeddings directly: `IdIndex` (engines/base/id_index.py) maps them to rows
through the sorted id array stored with the model. Row 0 of every id table is the learned
"unknown" row; training replaces ids by it at random (`id_dropout`), so users and services
that arrive after training are scored sensibly by the unknown rows plus the content branch,
never by an IndexError.
No batch normalisation: a batch of one row trains and scores like any other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import islice, pairwise

import torch
from torch import nn
from torch.nn import functional


@dataclass(frozen=True)
class NCFShape:
    users: int  # known users (the table has one more row: unknown)
    services: int
    user_content: int  # width of the user AE embedding
    service_content: int
    mf_dim: int = 32
    mlp_dim: int = 32
    mlp_layers: tuple[int, ...] = (64, 32, 16)
    content_layers: tuple[int, ...] = (64, 32)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> NCFShape:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def after_first(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`layers` applied to `x` from the second layer on (slicing a Sequential builds a new one).
    Inference only: the ReLUs work in place on `x` and on what the linear layers return."""
    for layer in islice(layers, 1, None):
        x = x.relu_() if isinstance(layer, nn.ReLU) else layer(x)
    return x


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class ServiceParts:
    """See `NCFModel.service_parts`: `mlp_first` per service id-table row; `content_first` and
    `match` per content row (in the order the content rows were given)."""

    mlp_first: torch.Tensor
    content_first: torch.Tensor
    match: torch.Tensor

    def take(self, content_positions: torch.Tensor) -> ServiceParts:
        return ServiceParts(
            self.mlp_first,
            self.content_first.index_select(0, content_positions),
            self.match.index_select(0, content_positions),
        )


class NCFModel(nn.Module):
    def __init__(self, shape: NCFShape):
        super().__init__()
        self.shape = shape
        self.gmf_user = nn.Embedding(shape.users + 1, shape.mf_dim)
        self.gmf_service = nn.Embedding(shape.services + 1, shape.mf_dim)
        self.mlp_user = nn.Embedding(shape.users + 1, shape.mlp_dim)
        self.mlp_service = nn.Embedding(shape.services + 1, shape.mlp_dim)
        # SVD++-style: the user's GMF vector plus the mean of these rows over the services the
        # user accessed, so what a user ordered speaks for them even when their id is unknown.
        self.history = nn.Embedding(shape.services + 1, shape.mf_dim)
        self.mlp = mlp([2 * shape.mlp_dim, *shape.mlp_layers])
        self.content = mlp([shape.user_content + shape.service_content, *shape.content_layers])
        # Content "GMF": both embeddings projected to one space and multiplied, so matching
        # interests (what cold start relies on) is one product away, not learned through ReLUs.
        width = shape.content_layers[-1]
        self.content_user = nn.Linear(shape.user_content, width)
        self.content_service = nn.Linear(shape.service_content, width)
        self.head = nn.Linear(shape.mf_dim + shape.mlp_layers[-1] + 2 * width, 1)
        tables = (self.gmf_user, self.gmf_service, self.mlp_user, self.mlp_service, self.history)
        for table in tables:
            nn.init.normal_(table.weight, std=0.01)

    def history_sums(self, items: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Per bag (a user's accessed service rows, flattened with `offsets`): the sum of their
        history rows; an empty bag sums to zeros."""
        return functional.embedding_bag(items, self.history.weight, offsets, mode="sum")

    def mean_history(self, items: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Like `history_sums`, averaged: the `history` input of `forward`."""
        return functional.embedding_bag(items, self.history.weight, offsets, mode="mean")

    @torch.inference_mode()
    def service_parts(self, service_content: torch.Tensor) -> ServiceParts:
        """What `forward` computes from services alone: the service halves of both first layers
        (for every row of the service id tables, and for each given content row) and the
        service side of the content match. Serving computes it once per model."""
        mlp_first = self.mlp_service.weight @ self.mlp[0].weight[:, self.shape.mlp_dim :].T
        return ServiceParts(mlp_first, *self.content_parts(service_content))

    @torch.inference_mode()
    def content_parts(self, service_content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The content rows' half of the content MLP's first layer, and their match side."""
        first = service_content @ self.content[0].weight[:, self.shape.user_content :].T
        return first, self.content_service(service_content)

    @torch.inference_mode()
    def forward_users(
        self,
        users: torch.Tensor,
        user_content: torch.Tensor,
        history: torch.Tensor,
        services: torch.Tensor,
        parts: ServiceParts,
    ) -> torch.Tensor:
        """`forward` for b users (rows [b], content [b, d], histories [b, mf_dim]), each over
        its own m services (id-table rows [b, m]); `parts` holds the content part of each of
        the b * m candidates, row-major (`service_parts` of their content rows, `take`n).
        Logits [b, m], the same as `forward`'s, for a fraction of the arithmetic: the first
        layers' service halves are gathered, not multiplied again per pair, and the head's two
        product inputs (GMF, content match) are folded into its weights, so each is one
        matrix-vector product per user instead of a [pairs, width] product and a concat."""
        shape, mlp_first, content_first = self.shape, self.mlp[0], self.content[0]
        b, m = services.shape
        mlp_user = self.mlp_user(users) @ mlp_first.weight[:, : shape.mlp_dim].T + mlp_first.bias
        gathered = parts.mlp_first.index_select(0, services.reshape(-1)).view(b, m, -1)
        deep = after_first(self.mlp, gathered.add_(mlp_user[:, None]))
        width = shape.user_content
        content_user = user_content @ content_first.weight[:, :width].T + content_first.bias
        content_pairs = parts.content_first.view(b, m, -1) + content_user[:, None]
        content = after_first(self.content, content_pairs)
        w_gmf, w_deep, w_content, w_match = self.head.weight[0].split(
            [shape.mf_dim, shape.mlp_layers[-1], shape.content_layers[-1], shape.content_layers[-1]]
        )
        # head(cat[a * b, ...]) = b @ (w * a) + ...: the user side scales the head's weights.
        gmf_user = w_gmf * (self.gmf_user(users) + history)
        gmf = torch.bmm(self.gmf_service(services), gmf_user[:, :, None])[..., 0]
        match_user = w_match * self.content_user(user_content)
        match = torch.bmm(parts.match.view(b, m, -1), match_user[:, :, None])[..., 0]
        return deep @ w_deep + content @ w_content + gmf + match + self.head.bias

    def forward(
        self,
        users: torch.Tensor,
        services: torch.Tensor,
        user_content: torch.Tensor,
        service_content: torch.Tensor,
        history: torch.Tensor,
    ) -> torch.Tensor:
        """Logits [n] for n (user row, service row) pairs, their content vectors and the users'
        mean history rows (see `history_sums`): training's pass. Scoring takes `forward_users`,
        tested equal to this."""
        gmf = (self.gmf_user(users) + history) * self.gmf_service(services)
        mlp_user = self.mlp_user(users).expand(len(services), -1)
        deep = self.mlp(torch.cat([mlp_user, self.mlp_service(services)], dim=1))
        user_content = user_content.expand(len(services), -1)
        content = self.content(torch.cat([user_content, service_content], dim=1))
        match = self.content_user(user_content) * self.content_service(service_content)
        return self.head(torch.cat([gmf, deep, content, match], dim=1)).squeeze(1)
