"""The synthetic catalogue: vocabularies, providers and services shaped by latent interests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.models.marketplace import RECOMMENDABLE_STATUSES
from recommender.synthetic import vocabulary as vocab
from recommender.synthetic.sampling import counts, slug, sparse_ids, unique_names, weighted_subsets

STATUS_SHARES = {
    "published": 0.80,
    "unverified": 0.10,
    "draft": 0.04,
    "errored": 0.03,
    "deleted": 0.03,
}
ORDER_TYPE_SHARES = [0.45, 0.35, 0.15, 0.05]
CLUSTERS = 12
# How much more a cluster favours its own categories, domains and platforms than the rest.
PREFERENCE = 60.0
DESCRIBED = {
    "target_users": vocab.TARGET_USERS,
    "access_modes": vocab.ACCESS_MODES,
    "access_types": vocab.ACCESS_TYPES,
    "trls": vocab.TRLS,
    "life_cycle_statuses": vocab.LIFE_CYCLE_STATUSES,
    "research_steps": vocab.RESEARCH_STEPS,
}


@dataclass(frozen=True)
class Interests:
    """Latent interest clusters: per cluster, a weight for every category, domain, platform."""

    cluster_shares: np.ndarray  # (clusters,)
    categories: np.ndarray  # (clusters, categories)
    domains: np.ndarray  # (clusters, domains)
    platforms: np.ndarray  # (clusters, platforms)


@dataclass(frozen=True)
class ServiceTraits:
    """What the user generator needs to know about the services it may order."""

    ids: np.ndarray
    clusters: np.ndarray
    popularity: np.ndarray
    horizontal: np.ndarray
    recommendable: np.ndarray  # bool per service


def _favoured(rng: np.random.Generator, width: int, per_cluster: int) -> np.ndarray:
    weights = np.ones((CLUSTERS, width))
    for cluster in range(CLUSTERS):
        weights[cluster, rng.choice(width, size=min(per_cluster, width), replace=False)] = (
            PREFERENCE
        )
    return weights


def draw_interests(rng: np.random.Generator) -> Interests:
    return Interests(
        cluster_shares=rng.dirichlet(np.full(CLUSTERS, 3.0)),
        categories=_favoured(rng, len(vocab.CATEGORIES), 4),
        domains=_favoured(rng, len(vocab.SCIENTIFIC_DOMAINS), 3),
        platforms=_favoured(rng, len(vocab.PLATFORMS), 2),
    )


def _named(rng: np.random.Generator, names: list[str]) -> list[dict]:
    ids = sparse_ids(rng, len(names)).tolist()
    return [{"id": i, "name": name} for i, name in zip(ids, names, strict=True)]


def _described(rng: np.random.Generator, pairs: list[tuple[str, str | None]]) -> list[dict]:
    ids = sparse_ids(rng, len(pairs)).tolist()
    return [
        {"id": i, "name": name, "description": text}
        for i, (name, text) in zip(ids, pairs, strict=True)
    ]


def _providers(rng: np.random.Generator, n: int) -> list[dict]:
    names = unique_names(rng, n, vocab.REGIONS, vocab.SUBJECTS, vocab.ORGANISATIONS)
    ids = sparse_ids(rng, n).tolist()
    no_pid = (rng.random(n) < 0.1).tolist()
    return [
        {"id": i, "pid": None if missing else slug(name), "name": name}
        for i, name, missing in zip(ids, names, no_pid, strict=True)
    ]


def draw_vocabularies(rng: np.random.Generator, n_services: int) -> dict[str, list[dict]]:
    """The 10 reference kinds of a dump; providers scale with the catalogue."""
    return {
        "categories": _named(rng, vocab.CATEGORIES),
        "providers": _providers(rng, max(5, n_services // 4)),
        "scientific_domains": _named(rng, vocab.SCIENTIFIC_DOMAINS),
        "platforms": _named(rng, vocab.PLATFORMS),
        **{key: _described(rng, pairs) for key, pairs in DESCRIBED.items()},
    }


def _ids(entities: list[dict]) -> np.ndarray:
    return np.array([entity["id"] for entity in entities])


def _statuses(rng: np.random.Generator, n: int) -> np.ndarray:
    names = np.array(list(STATUS_SHARES))
    statuses = rng.choice(names, size=n, p=list(STATUS_SHARES.values()))
    if n >= 4 * len(names):  # every status shows up, even in a small catalogue
        statuses[rng.choice(n, size=len(names), replace=False)] = names
    return statuses


def _related(
    rng: np.random.Generator, clusters: np.ndarray, ids: np.ndarray, sizes: np.ndarray
) -> list[list[int]]:
    """Up to `sizes[i]` other services of the same cluster (drawn with replacement, deduped)."""
    order = np.argsort(clusters, kind="stable")
    members = np.bincount(clusters, minlength=CLUSTERS)
    starts = np.concatenate([[0], np.cumsum(members)[:-1]])
    draws = rng.random((len(ids), 3))
    picks = ids[order[starts[clusters, None] + (draws * members[clusters, None]).astype(int)]]
    return [
        list(dict.fromkeys(p for p in row if p != own))[:size]
        for row, own, size in zip(picks.tolist(), ids.tolist(), sizes.tolist(), strict=True)
    ]


def _texts(
    rng: np.random.Generator,
    names: list[str],
    domains: list[list[int]],
    domain_names: dict[int, str],
) -> tuple[list[str | None], list[str | None]]:
    """Descriptions and taglines, each sometimes null."""
    n = len(names)
    words = np.array(vocab.TAGLINE_WORDS)[rng.integers(0, len(vocab.TAGLINE_WORDS), (n, 3))]
    taglines = [", ".join(dict.fromkeys(row)) for row in words.tolist()]
    descriptions = [
        f"{name} helps researchers in {domain_names[ds[0]].split(' ► ')[-1].lower()} "
        f"with {tagline}."
        for name, ds, tagline in zip(names, domains, taglines, strict=True)
    ]
    no_description = (rng.random(n) < 0.05).tolist()
    no_tagline = (rng.random(n) < 0.1).tolist()
    return (
        [None if gone else text for text, gone in zip(descriptions, no_description, strict=True)],
        [None if gone else text for text, gone in zip(taglines, no_tagline, strict=True)],
    )


def _pids(
    rng: np.random.Generator, names: list[str], organisation: np.ndarray, providers: list[dict]
) -> list[str | None]:
    """`<provider pid>.<service slug>`, or None (sometimes, and when the provider has none)."""
    provider_pids = {p["id"]: p["pid"] for p in providers}
    no_pid = (rng.random(len(names)) < 0.1).tolist()
    return [
        None if missing or provider_pids[o] is None else f"{provider_pids[o]}.{slug(name)}"
        for o, name, missing in zip(organisation.tolist(), names, no_pid, strict=True)
    ]


def draw_services(
    rng: np.random.Generator, n: int, facets: dict[str, list[dict]], interests: Interests
) -> tuple[list[dict], ServiceTraits]:
    ids = sparse_ids(rng, n)
    clusters = rng.choice(CLUSTERS, size=n, p=interests.cluster_shares)
    horizontal = rng.random(n) < 0.06
    # Zipf-like popularity: a few services are ordered a lot, most rarely; horizontal ones more.
    popularity = rng.permutation(1.0 / np.arange(1, n + 1) ** 0.9) * np.where(horizontal, 2, 1)
    statuses = _statuses(rng, n)
    ref = {key: _ids(items) for key, items in facets.items()}

    def pick(
        key: str, weights: np.ndarray, low: int, high: int, p: float, by_cluster: bool = False
    ) -> list[list[int]]:
        sizes = counts(rng, n, low, high, p)
        return weighted_subsets(rng, weights, sizes, ref[key], clusters if by_cluster else None)

    def flat(key: str) -> np.ndarray:
        return np.ones(len(ref[key]))

    # Larger providers run more services (resource organisation first in `providers`).
    provider_weights = rng.pareto(1.5, len(ref["providers"])) + 0.1
    organisation = rng.choice(ref["providers"], size=n, p=provider_weights / provider_weights.sum())
    partner = rng.choice(ref["providers"], size=n)
    with_partner = (rng.random(n) < 0.2) & (partner != organisation)
    trl_weights = np.linspace(0.2, 3.0, len(ref["trls"]))
    stage_weights = np.ones(len(ref["life_cycle_statuses"]))
    stage_weights[[name == "Production" for name, _ in vocab.LIFE_CYCLE_STATUSES]] = 12.0
    domains = pick("scientific_domains", interests.domains, 1, 3, 0.3, by_cluster=True)
    domain_names = {d["id"]: d["name"] for d in facets["scientific_domains"]}
    names = unique_names(rng, n, vocab.QUALIFIERS, vocab.SUBJECTS, vocab.KINDS)
    descriptions, taglines = _texts(rng, names, domains, domain_names)
    related = _related(rng, clusters, ids, counts(rng, n, 0, 3, 0.4))
    requires = (rng.random(n) < 0.03).tolist()
    columns = {
        "id": ids.tolist(),
        "pid": _pids(rng, names, organisation, facets["providers"]),
        "name": names,
        "description": descriptions,
        "tagline": taglines,
        "countries": weighted_subsets(
            rng,
            np.r_[8.0, 4.0, np.ones(len(vocab.COUNTRIES) - 2)],
            counts(rng, n, 1, 3, 0.25),
            np.array(vocab.COUNTRIES),
        ),
        "order_type": rng.choice(vocab.ORDER_TYPES, size=n, p=ORDER_TYPE_SHARES).tolist(),
        "rating": [
            f"{r:.1f}"
            for r in np.where(
                rng.random(n) < 0.4, 0.0, np.round(rng.uniform(2.5, 5.0, n) * 2) / 2
            ).tolist()
        ],
        "categories": pick("categories", interests.categories, 1, 3, 0.3, by_cluster=True),
        "providers": [
            [o, p] if both else [o]
            for o, p, both in zip(
                organisation.tolist(), partner.tolist(), with_partner.tolist(), strict=True
            )
        ],
        "resource_organisation": organisation.tolist(),
        "scientific_domains": domains,
        "platforms": pick("platforms", interests.platforms, 0, 2, 0.4, by_cluster=True),
        "target_users": pick("target_users", flat("target_users"), 1, 3, 0.3),
        "related_services": related,
        "required_services": [
            r[:1] if needs else [] for r, needs in zip(related, requires, strict=True)
        ],
        "access_modes": pick("access_modes", flat("access_modes"), 1, 2, 0.2),
        "access_types": pick("access_types", flat("access_types"), 1, 2, 0.2),
        "trls": pick("trls", trl_weights, 1, 1, 0.0),
        "life_cycle_statuses": pick("life_cycle_statuses", stage_weights, 1, 1, 0.0),
        "research_steps": pick("research_steps", flat("research_steps"), 1, 2, 0.3),
        "horizontal": horizontal.tolist(),
        "status": statuses.tolist(),
    }
    services = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    recommendable = np.isin(statuses, RECOMMENDABLE_STATUSES)
    return services, ServiceTraits(ids, clusters, popularity, horizontal, recommendable)
