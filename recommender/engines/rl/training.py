"""Off-policy actor-critic on logged requests (contextual: one request is one step).

Per batch of logged requests (state s, candidates, the K services shown with their logging
propensities mu_j, and what each earned r_j):
1. critic step: q(s, c_j, j) regresses onto r_j (cross-entropy on the value in [0, 1]) with
   importance weights 1 / mu_j (clipped at `max_weight`): slates the logging policy rarely
   showed count as much as it would have shown them under uniform sampling, so the critic
   is not fit only where the logging policy looked;
2. actor step (critic frozen): the actor's weights w = actor(s) score every candidate, and a
   softened policy (Plackett-Luce over scores / temperature, its per-position marginals
   P_w(c at j) by sequential softmax) gives the critic's value of the action,
   Q(s, w) = sum_j sum_c P_w(c at j) q(s, c, j); plus the doubly robust correction on the
   logged positions, sum_j P_w(c_j at j) / mu_j * (r_j - q(s, c_j, j)) (clipped weights),
   which moves the actor where the critic is wrong about what was actually shown. The actor
   maximises the sum, minus `imitation` x the negative log-likelihood of the logged slates
   under its softened policy: a pull towards what the logs cover, where the critic was fit
   (TD3+BC's idea; without logged propensities the critic cannot be corrected for which
   services the logging policy favoured, and it extrapolates badly away from them).
The served policy is the greedy one: the K candidates with the highest features @ w.
Everything random comes from one seeded generator; batches are vectorised (no per-row loops).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from recommender.engines.rl.candidates import (
    FEATURES,
    RULE_PRIOR,
    ServiceTable,
    Tallies,
    candidate_features,
    scores,
    state_vector,
)
from recommender.engines.rl.data import Requests, UserSpace
from recommender.engines.rl.networks import Actor, Critic, Shape

NEG = -1e9
EPS = 1e-6


@dataclass(frozen=True)
class AgentConfig:
    epochs: int = 8
    batch_size: int = 128
    # Small steps from the prior (prior.py): the validation split is small and its simulator
    # shares the critic's blind spots, so larger steps validate well and serve worse.
    actor_lr: float = 3e-4
    critic_lr: float = 3e-3
    temperature: float = 0.1  # of the softened policy the actor is trained through
    max_weight: float = 20.0  # clip of the importance weights
    doubly_robust: float = 1.0  # weight of the correction term (0: critic only)
    imitation: float = 0.0  # weight of the logged slates' negative log-likelihood
    weight_decay: float = 1e-4
    grad_clip: float = 10.0

    def as_dict(self) -> dict:
        return asdict(self)


def position_marginals(logits: torch.Tensor, k: int) -> torch.Tensor:
    """[B, K, C] exact P(c at position j) of the Plackett-Luce policy with `logits` [B, C]
    (padding at NEG), for K <= 3 (the panels' sizes), differentiable. With p the softmax:
    P(c at 2) = p_c sum_{a != c} p_a / (1 - p_a); P(c at 3) = p_c times the sum over ordered
    pairs (a, b) without c of p_a p_b / ((1 - p_a)(1 - p_a - p_b))."""
    if k > 3:
        raise ValueError(f"exact marginals are implemented for K <= 3, not {k}")
    p = torch.softmax(logits, dim=1)
    out = [p]
    if k >= 2:
        after = p / (1 - p).clamp_min(EPS)  # p_a / (1 - p_a)
        out.append(p * (after.sum(dim=1, keepdim=True) - after))
    if k >= 3:
        rest = (1 - p.unsqueeze(2) - p.unsqueeze(1)).clamp_min(EPS)  # 1 - p_a - p_b
        pairs = after.unsqueeze(2) * p.unsqueeze(1) / rest  # [B, a, b]
        pairs = pairs * (1 - torch.eye(p.shape[1], device=p.device))  # a != b
        total = pairs.sum(dim=(1, 2)).unsqueeze(1)
        out.append(p * (total - pairs.sum(dim=2) - pairs.sum(dim=1)))
    return torch.stack(out, dim=1)


class Agent:
    def __init__(self, shape: Shape, config: AgentConfig):
        self.shape, self.config = shape, config
        self.actor, self.critic = Actor(shape), Critic(shape)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.AdamW(
            self.critic.parameters(), lr=config.critic_lr, weight_decay=config.weight_decay
        )

    def weights(self, batch: Requests) -> torch.Tensor:
        """Clipped importance weights [B, K] (0 where no service was logged)."""
        w = (1.0 / batch.propensities).clamp(max=self.config.max_weight)
        return w * (batch.shown >= 0).float()

    def critic_step(self, state, features, batch: Requests) -> float:
        q = self.critic(state, features)  # [B, C, K]
        logged = logged_q(q, batch.shown)
        weights = self.weights(batch)
        loss = functional.binary_cross_entropy(logged, batch.values, reduction="none")
        loss = (loss * weights).sum() / weights.sum().clamp_min(1e-6)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), self.config.grad_clip)
        self.critic_opt.step()
        return loss.item()

    def actor_step(self, state, features, padding, batch: Requests) -> float:
        with torch.no_grad():
            q = self.critic(state, features)  # [B, C, K]
            residual = batch.values - logged_q(q, batch.shown)
        weights = self.actor(state)
        logits = scores(features, weights) / self.config.temperature
        marginals = position_marginals(logits.masked_fill(padding, NEG), self.shape.k)
        value = torch.einsum("bjc,bcj->b", marginals, q)
        on_logged = torch.gather(marginals, 2, batch.shown.clamp_min(0).unsqueeze(2)).squeeze(2)
        correction = (on_logged * self.weights(batch) * residual).sum(dim=1)
        logged = (batch.shown >= 0).float()
        nll = -(torch.log(on_logged.clamp_min(1e-9)) * logged).sum() / logged.sum().clamp_min(1)
        loss = -(value + self.config.doubly_robust * correction).mean()
        loss = loss + self.config.imitation * nll
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), self.config.grad_clip)
        self.actor_opt.step()
        return loss.item()


def logged_q(q: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
    """[B, K]: q of the service logged at each position j, at position j."""
    per_candidate = torch.gather(q, 1, shown.clamp_min(0).unsqueeze(2).expand(-1, -1, q.shape[2]))
    return torch.diagonal(per_candidate, dim1=1, dim2=2)


@dataclass
class FitResult:
    actor: Actor
    config: AgentConfig
    epoch: int  # the epoch whose actor was kept (chosen on validation), 0: untrained
    validation: list[float]  # per epoch (index 0: before training)
    critic_losses: list[float]
    actor_losses: list[float]
    seconds: float


# The actor's validation reward (higher is better), for choosing the epoch.
Validate = Callable[[Actor], float]
EpochHook = Callable[[int, float, float], None]


def fit(
    data: Requests,
    users: UserSpace,
    table: ServiceTable,
    k: int,
    config: AgentConfig,
    seed: int,
    validate: Validate,
    on_epoch: EpochHook | None = None,
    tallies: Tallies | None = None,
    prior: tuple[float, ...] = RULE_PRIOR,
) -> FitResult:
    """Train from scratch (seeded) for `config.epochs`; keep the actor of the epoch with the
    best validation reward (epoch 0: the untrained actor, `prior`'s ranking, so that more
    epochs never hurt on it).
    `tallies`: what the table's training statistics were counted from, when `data` is among
    it (each request's features then leave its own outcomes out: candidates.Tallies)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    agent = Agent(actor_shape(k, users, table, prior), config)
    generator = torch.Generator().manual_seed(seed)
    agent.actor.eval()
    best, best_epoch, scores_ = copy.deepcopy(agent.actor.state_dict()), 0, [validate(agent.actor)]
    critic_means, actor_means = [], []
    n = len(data)
    batches = max(1, -(-n // config.batch_size))
    for epoch in range(1, config.epochs + 1):
        agent.actor.train()
        critic_losses, actor_losses = [], []
        for index in torch.tensor_split(torch.randperm(n, generator=generator), batches):
            if len(index) == 0:
                continue
            batch = data.batch(index)
            state = state_vector(table, batch.states(users))
            features = candidate_features(table, batch.states(users), batch.candidates)
            if tallies is not None:
                features = tallies.held_out(features, batch.candidates, batch.shown, batch.values)
            padding = batch.candidates == 0
            critic_losses.append(agent.critic_step(state, features, batch))
            actor_losses.append(agent.actor_step(state, features, padding, batch))
        critic_means.append(float(np.mean(critic_losses)) if critic_losses else float("nan"))
        actor_means.append(float(np.mean(actor_losses)) if actor_losses else float("nan"))
        agent.actor.eval()
        scores_.append(validate(agent.actor))
        if scores_[-1] > scores_[best_epoch]:
            best, best_epoch = copy.deepcopy(agent.actor.state_dict()), epoch
        if on_epoch is not None:
            on_epoch(epoch, critic_means[-1], actor_means[-1])
    agent.actor.load_state_dict(best)
    return FitResult(
        agent.actor.eval(),
        config,
        best_epoch,
        scores_,
        critic_means,
        actor_means,
        time.perf_counter() - started,
    )


def actor_shape(
    k: int, users: UserSpace, table: ServiceTable, prior: tuple[float, ...] = RULE_PRIOR
) -> Shape:
    return Shape(k=k, state_dim=state_dim(users, table), features=len(FEATURES), prior=prior)


def untrained_actor(
    k: int, users: UserSpace, table: ServiceTable, prior: tuple[float, ...] = RULE_PRIOR
) -> Actor:
    """The untrained actor: `prior`'s ranking whatever the state (its correction is 0); with
    RULE_PRIOR, the interest-overlap rule's."""
    return Actor(actor_shape(k, users, table, prior)).eval()


def state_dim(users: UserSpace, table: ServiceTable) -> int:
    return users.matrix.shape[1] + table.embeddings.shape[1] + 2
