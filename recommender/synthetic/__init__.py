"""Seeded synthetic data: a Marketplace catalogue with users and orders, and browsing sessions."""

from recommender.synthetic.marketplace import (
    generate_marketplace,
    generate_sessions,
    generate_world,
)
from recommender.synthetic.world import World

__all__ = ["World", "generate_marketplace", "generate_sessions", "generate_world"]
