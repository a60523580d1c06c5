"""A seeded synthetic Marketplace: a `/update` dump, and browsing sessions on top of it.

Latent interest clusters drive everything: each favours a few categories, scientific domains
and platforms. Services belong to a cluster (their facets lean to its favourites), users too
(their declared interests do), and a user's orders come mostly from services of the user's
cluster, weighted by a Zipf-like popularity: a few popular services and a long tail.
"""

from __future__ import annotations

import numpy as np

from recommender.synthetic.catalogue import draw_interests, draw_services, draw_vocabularies
from recommender.synthetic.population import draw_projects, draw_users
from recommender.synthetic.sessions import generate_sessions
from recommender.synthetic.world import World

__all__ = ["generate_marketplace", "generate_sessions", "generate_world"]


def generate_marketplace(users: int, services: int, seed: int) -> dict:
    """A dump in the `POST /update` format (all 13 keys) with `users` users and `services`
    services; the same seed gives the same dump.

    Services have every status (mostly published), some null pid/description/tagline, and ids
    with gaps; users order only recommendable (published or unverified) services.
    """
    if services < 1 or users < 0:
        raise ValueError("A marketplace needs at least one service and no negative user count")
    rng = np.random.default_rng(seed)
    interests = draw_interests(rng)
    dump = draw_vocabularies(rng, services)
    dump["services"], traits = draw_services(rng, services, dump, interests)
    category_ids = np.array([c["id"] for c in dump["categories"]])
    domain_ids = np.array([d["id"] for d in dump["scientific_domains"]])
    dump["users"] = draw_users(rng, users, interests, category_ids, domain_ids, traits)
    dump["projects"] = draw_projects(rng, dump["users"])
    return dump


def generate_world(users: int, services: int, seed: int, latent_seed: int = 0) -> World:
    """The synthetic world (hidden interests, logging policy, oracle) on a freshly generated
    marketplace: `World(generate_marketplace(users, services, seed), latent_seed)`."""
    return World(generate_marketplace(users, services, seed), latent_seed)
