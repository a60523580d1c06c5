"""TD3 (twin delayed DDPG) on logged transitions, done right.

Per batch:
1. critic step: a' = target_actor(s') + clipped Gaussian noise (renormalised: actions are unit
   vectors); y = r + gamma * (1 - done) * min(target_Q1(s', a'), target_Q2(s', a')), from the
   TARGET critics (the original used the online ones and had no terminal mask); both critics
   regress onto y;
2. every `policy_delay` steps: actor step maximising Q1(s, actor(s)) with the critics frozen,
   then Polyak averaging of the actor and both critics into their targets, parameters AND
   buffers (BatchNorm statistics).
Target networks stay in eval mode; everything random comes from one seeded generator.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from recommender.engines.rl.data import Transitions
from recommender.engines.rl.networks import Actor, Critic, Shape, polyak


@dataclass(frozen=True)
class TD3Config:
    epochs: int = 8
    batch_size: int = 256
    actor_lr: float = 2e-3
    critic_lr: float = 1e-3
    gamma: float = 0.9
    polyak: float = 0.99  # target <- polyak * target + (1 - polyak) * online
    target_noise: float = 0.2  # L2 size of the smoothing noise on a unit weight vector
    noise_clip: float = 0.5  # per-coordinate clip, in the same units
    policy_delay: int = 2
    grad_clip: float = 10.0
    # TD3+BC (Fujimoto & Gu, 2021): the actor maximises alpha * Q / mean|Q| minus its squared
    # distance to the logged action, so it cannot run off to actions no data ever showed the
    # critic (learning from logs only, the critic's guesses there are wild). None: plain TD3.
    bc_alpha: float | None = 2.5
    critic_weight_decay: float = 1e-4

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Matrices:
    """The lookup tables batches gather from (row 0 of each is the zero padding row)."""

    users: torch.Tensor  # [U + 1, UE]
    services: torch.Tensor  # [S + 1, D]


@dataclass
class Batch:
    user: torch.Tensor
    history: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    values: torch.Tensor
    next_history: torch.Tensor
    done: torch.Tensor

    @classmethod
    def gather(cls, t: Transitions, m: Matrices) -> Batch:
        return cls(
            user=m.users[t.user],
            history=m.services[t.history],
            action=m.services[t.action],
            reward=t.reward,
            values=t.values,
            next_history=m.services[t.next_history],
            done=t.done,
        )


class TD3:
    def __init__(self, shape: Shape, config: TD3Config, device: torch.device):
        self.shape, self.config, self.device = shape, config, device
        self.actor = Actor(shape).to(device)
        self.q1, self.q2 = Critic(shape).to(device), Critic(shape).to(device)
        self.target_actor = _frozen_copy(self.actor)
        self.target_q1, self.target_q2 = _frozen_copy(self.q1), _frozen_copy(self.q2)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        # A list, not a one-shot iterator: the optimizer and the freezing below both use it.
        self.critic_params = [*self.q1.parameters(), *self.q2.parameters()]
        self.critic_opt = torch.optim.AdamW(
            self.critic_params, lr=config.critic_lr, weight_decay=config.critic_weight_decay
        )
        self.steps = 0

    def noise(self, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        scale = 1.0 / math.sqrt(self.shape.service_dim)
        noise = torch.randn(like.shape, generator=generator, device=like.device)
        noise = noise * (self.config.target_noise * scale)
        clip = self.config.noise_clip * scale
        return noise.clamp(-clip, clip)

    @torch.no_grad()
    def targets(self, batch: Batch, generator: torch.Generator) -> torch.Tensor:
        """Per slot [B, K]: y_k = v_k + gamma * (1 - done) * min of the TARGET critics at
        (s', smoothed a'). Q(s, a) is the mean of the slots, so its target is mean_k y_k."""
        next_action = self.target_actor(batch.user, batch.next_history)
        next_action = functional.normalize(next_action + self.noise(next_action, generator), dim=-1)
        next_q = torch.minimum(
            self.target_q1(batch.user, batch.next_history, next_action),
            self.target_q2(batch.user, batch.next_history, next_action),
        )
        return batch.values + (self.config.gamma * (1.0 - batch.done) * next_q).unsqueeze(1)

    def critic_step(self, batch: Batch, generator: torch.Generator) -> float:
        """Each slot regresses onto its own target: each service's own value is known, so the
        critic need not guess which of the K services earned the recommendation's reward."""
        y = self.targets(batch, generator)
        loss = functional.mse_loss(
            self.q1.slots(batch.user, batch.history, batch.action), y
        ) + functional.mse_loss(self.q2.slots(batch.user, batch.history, batch.action), y)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic_params, self.config.grad_clip)
        self.critic_opt.step()
        return loss.item()

    def actor_step(self, batch: Batch) -> float:
        for p in self.critic_params:
            p.requires_grad_(False)
        self.q1.eval()  # scores the actor's actions without moving Q1's batch statistics
        try:
            action = self.actor(batch.user, batch.history)
            q = self.q1(batch.user, batch.history, action)
            if self.config.bc_alpha is None:
                loss = -q.mean()
            else:
                weight = self.config.bc_alpha / q.abs().mean().detach().clamp_min(1e-6)
                distance = (action - batch.action).square().sum(dim=-1).mean()
                loss = distance - weight * q.mean()
            self.actor_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.actor.parameters(), self.config.grad_clip)
            self.actor_opt.step()
            return loss.item()
        finally:
            self.q1.train()
            for p in self.critic_params:
                p.requires_grad_(True)

    def update_targets(self) -> None:
        keep = self.config.polyak
        polyak(self.target_actor, self.actor, keep)
        polyak(self.target_q1, self.q1, keep)
        polyak(self.target_q2, self.q2, keep)

    def step(self, batch: Batch, generator: torch.Generator) -> tuple[float, float | None]:
        """One TD3 iteration: (critic loss, actor loss or None on a delayed step)."""
        critic_loss = self.critic_step(batch, generator)
        actor_loss = None
        self.steps += 1
        if self.steps % self.config.policy_delay == 0:
            actor_loss = self.actor_step(batch)
            self.update_targets()
        return critic_loss, actor_loss


def _frozen_copy(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module)
    target.eval()
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@dataclass
class FitResult:
    actor: Actor
    critic_losses: list[float]  # per epoch means
    actor_losses: list[float]
    seconds: float


EpochHook = Callable[[int, float, float], None]


def fit(
    data: Transitions,
    matrices: Matrices,
    shape: Shape,
    config: TD3Config,
    seed: int,
    device: torch.device,
    on_epoch: EpochHook | None = None,
) -> FitResult:
    """Train from scratch on `data` (seeded); returns the actor in eval mode on the CPU."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    agent = TD3(shape, config, device)
    agent.actor.train(), agent.q1.train(), agent.q2.train()
    generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(device=device).manual_seed(seed + 1)
    data = data.to(device)
    matrices = Matrices(matrices.users.to(device), matrices.services.to(device))
    n = len(data)
    # BatchNorm needs 2+ rows: the last partial batch joins the previous one.
    batches = max(1, n // config.batch_size)
    critic_means, actor_means = [], []
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        critic_losses, actor_losses = [], []
        for index in torch.tensor_split(order, batches):
            batch = Batch.gather(data.batch(index.to(device)), matrices)
            critic_loss, actor_loss = agent.step(batch, noise_generator)
            critic_losses.append(critic_loss)
            if actor_loss is not None:
                actor_losses.append(actor_loss)
        critic_means.append(float(np.mean(critic_losses)))
        actor_means.append(float(np.mean(actor_losses)) if actor_losses else float("nan"))
        if on_epoch is not None:
            on_epoch(epoch, critic_means[-1], actor_means[-1])
    actor = agent.actor.to("cpu").eval()
    return FitResult(actor, critic_means, actor_means, time.perf_counter() - started)
