"""Synthetic users: interests from a latent cluster, orders driven by interests and popularity."""

from __future__ import annotations

import numpy as np

from recommender.synthetic.catalogue import CLUSTERS, Interests, ServiceTraits
from recommender.synthetic.sampling import (
    counts,
    first_occurrences,
    ragged,
    sparse_ids,
    weighted_subsets,
)

NO_ORDERS_SHARE = 0.2
MEAN_ORDERS = 4.0
MAX_ORDERS = 40
# Weight of a service outside the user's cluster, relative to one inside (horizontal: in between).
OFF_CLUSTER = 0.01
HORIZONTAL = 0.1
PROJECT_SHARE = 0.7


def order_weights(traits: ServiceTraits) -> np.ndarray:
    """(clusters, recommendable services): how likely a user of each cluster orders each one."""
    clusters = traits.clusters[traits.recommendable]
    affinity = np.where(
        clusters[None, :] == np.arange(CLUSTERS)[:, None],
        1.0,
        np.where(traits.horizontal[traits.recommendable], HORIZONTAL, OFF_CLUSTER),
    )
    weights = affinity * traits.popularity[traits.recommendable]
    return weights / weights.sum(axis=1, keepdims=True)


def draw_orders(
    rng: np.random.Generator, user_clusters: np.ndarray, traits: ServiceTraits
) -> list[list[int]]:
    """Each user's accessed services, oldest first, all recommendable and distinct.

    Draws are with replacement per cluster (one vectorised call each), then a repeat within a
    user is dropped, so heavy users end up with slightly fewer orders than drawn.
    """
    n = len(user_clusters)
    candidates = traits.ids[traits.recommendable]
    if not len(candidates):
        return [[] for _ in range(n)]
    wanted = np.minimum(rng.geometric(1 / MEAN_ORDERS, n), MAX_ORDERS)
    wanted[rng.random(n) < NO_ORDERS_SHARE] = 0
    weights = order_weights(traits)
    owners, picks = [], []
    for cluster in range(CLUSTERS):
        members = np.flatnonzero(user_clusters == cluster)
        per_user = wanted[members]
        owners.append(np.repeat(members, per_user))
        picks.append(rng.choice(len(candidates), size=int(per_user.sum()), p=weights[cluster]))
    owner, pick = np.concatenate(owners), np.concatenate(picks)
    by_user = np.argsort(owner, kind="stable")  # keeps each user's draw order: chronology
    owner, pick = owner[by_user], pick[by_user]
    keep = first_occurrences(owner, pick)
    return ragged(candidates[pick[keep]], owner[keep], n)


def draw_users(
    rng: np.random.Generator,
    n: int,
    interests: Interests,
    category_ids: np.ndarray,
    domain_ids: np.ndarray,
    traits: ServiceTraits,
) -> list[dict]:
    ids = sparse_ids(rng, n).tolist()
    clusters = rng.choice(CLUSTERS, size=n, p=interests.cluster_shares)
    # A few users declared no interests at all (they still order).
    silent = rng.random(n) < 0.08
    categories = weighted_subsets(
        rng,
        interests.categories,
        np.where(silent, 0, counts(rng, n, 1, 3, 0.4)),
        category_ids,
        clusters,
    )
    domains = weighted_subsets(
        rng,
        interests.domains,
        np.where(silent, 0, counts(rng, n, 1, 3, 0.3)),
        domain_ids,
        clusters,
    )
    orders = draw_orders(rng, clusters, traits)
    halves = rng.integers(0, 2**63, size=(n, 2)).tolist()
    return [
        {
            "id": user_id,
            "aai_uid": f"{a:016x}{b:016x}@egi.eu",
            "scientific_domains": ds,
            "categories": cs,
            "accessed_services": os,
        }
        for user_id, (a, b), ds, cs, os in zip(
            ids, halves, domains, categories, orders, strict=True
        )
    ]


def draw_projects(rng: np.random.Generator, users: list[dict]) -> list[dict]:
    """Projects of users who ordered: each groups a consecutive run of the user's orders."""
    ordered = np.array([len(u["accessed_services"]) for u in users], dtype=np.int64)
    wanted = np.where(
        (ordered > 0) & (rng.random(len(users)) < PROJECT_SHARE),
        np.minimum(counts(rng, len(users), 1, 3, 0.3), ordered),
        0,
    )
    owners = np.repeat(np.arange(len(users)), ordered)
    position = np.arange(len(owners)) - np.repeat(np.cumsum(ordered) - ordered, ordered)
    # Split each user's orders into `wanted` consecutive chunks; users without projects drop out.
    chunk = position * wanted[owners] // np.maximum(ordered[owners], 1)
    has_project = wanted[owners] > 0
    first_project = np.cumsum(wanted) - wanted
    project_of = (first_project[owners] + chunk)[has_project]
    services = np.array([s for u in users for s in u["accessed_services"]], dtype=np.int64)[
        has_project
    ]
    total = int(wanted.sum())
    project_ids = sparse_ids(rng, total).tolist()
    user_ids = np.repeat([u["id"] for u in users], wanted).tolist()
    return [
        {"id": pid, "user_id": uid, "services": group}
        for pid, uid, group in zip(
            project_ids, user_ids, ragged(services, project_of, total), strict=True
        )
    ]
