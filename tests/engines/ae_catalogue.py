"""Catalogues with learnable structure for autoencoder and embedding tests (bulk inserted).

Every user and service belongs to one of a few interest clusters; its categories and scientific
domains come mostly from its cluster, so an autoencoder has something to learn.
"""

from __future__ import annotations

import numpy as np

from recommender.models.marketplace import Service, User
from recommender.store import get_db

CLUSTERS = 4


def _pick(rng: np.random.Generator, cluster: int, base: int, size: int) -> list[int]:
    own = base + cluster * 4 + rng.choice(4, size=size, replace=False)
    return sorted({int(v) for v in own})


def service_docs(n: int, seed: int = 0, first_id: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        cluster = int(rng.integers(CLUSTERS))
        docs.append(
            {
                "_id": first_id + i,
                "name": f"Service {first_id + i}",
                "status": "published",
                "countries": [["PL", "DE", "FR", "IT"][cluster]],
                "categories": _pick(rng, cluster, 10, 2),
                "scientific_domains": _pick(rng, cluster, 100, 1),
                "providers": [int(500 + cluster * 3 + rng.integers(3))],
                "resource_organisation": int(500 + cluster * 3),
                "platforms": [int(700 + cluster)],
                "target_users": [int(800 + rng.integers(3))],
                "access_modes": [],
                "access_types": [],
                "trls": [int(900 + cluster % 2)],
                "life_cycle_statuses": [],
                "research_steps": [],
            }
        )
    return docs


def user_docs(n: int, seed: int = 0, first_id: int = 1000) -> list[dict]:
    rng = np.random.default_rng(seed + 1)
    docs = []
    for i in range(n):
        cluster = int(rng.integers(CLUSTERS))
        docs.append(
            {
                "_id": first_id + i,
                "categories": _pick(rng, cluster, 10, 2),
                "scientific_domains": _pick(rng, cluster, 100, 2),
                "accessed_services": [],
            }
        )
    return docs


def insert_catalogue(users: int, services: int, seed: int = 0) -> None:
    """`users` users and `services` services, written with one insert_many each."""
    db = get_db()
    if services:
        db[Service._get_collection_name()].insert_many(service_docs(services, seed))
    if users:
        db[User._get_collection_name()].insert_many(user_docs(users, seed))
