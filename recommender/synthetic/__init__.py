"""Seeded synthetic data: a Marketplace catalogue with users and orders, and browsing sessions."""

from recommender.synthetic.marketplace import generate_marketplace, generate_sessions

__all__ = ["generate_marketplace", "generate_sessions"]
