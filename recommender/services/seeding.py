"""Fill the database with a synthetic marketplace: catalogue, users, orders and sessions."""

from __future__ import annotations

from dataclasses import dataclass

from recommender.synthetic.marketplace import generate_marketplace, generate_sessions
from recommender.synthetic.writer import write_marketplace, write_sessions


@dataclass
class SeedReport:
    users: int
    services: int
    recommendations: int
    user_actions: int


def seed_database(users: int, services: int, sessions: int, seed: int) -> SeedReport:
    dump = generate_marketplace(users=users, services=services, seed=seed)
    write_marketplace(dump)
    recommendations, actions = generate_sessions(dump, sessions=sessions, seed=seed)
    write_sessions(recommendations, actions)
    return SeedReport(len(dump["users"]), len(dump["services"]), len(recommendations), len(actions))
