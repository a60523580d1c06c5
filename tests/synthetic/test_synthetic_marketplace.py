"""The synthetic marketplace: a valid, realistic, reproducible `/update` dump."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import DUMP_KEYS, validate_dump
from recommender.models.marketplace import RECOMMENDABLE_STATUSES
from recommender.synthetic import generate_marketplace

USERS, SERVICES = 400, 150


@pytest.fixture(scope="module")
def dump() -> dict:
    return generate_marketplace(users=USERS, services=SERVICES, seed=3)


def recommendable(dump: dict) -> set[int]:
    return {s["id"] for s in dump["services"] if s["status"] in RECOMMENDABLE_STATUSES}


def test_same_seed_same_dump_other_seed_other_dump(dump):
    assert generate_marketplace(users=USERS, services=SERVICES, seed=3) == dump
    other = generate_marketplace(users=USERS, services=SERVICES, seed=4)
    assert other["services"] != dump["services"]
    assert other["users"] != dump["users"]


def test_dump_is_valid_json_with_every_key_and_no_dangling_reference(dump):
    assert set(dump) == set(DUMP_KEYS)
    assert json.loads(json.dumps(dump)) == dump  # plain JSON types only (no numpy scalars)
    entities = validate_dump(dump)
    assert drop_dangling_references(entities) == {}
    assert len(entities["services"]) == SERVICES
    assert len(entities["users"]) == USERS


def test_statuses_are_mixed_mostly_published(dump):
    statuses = Counter(s["status"] for s in dump["services"])
    assert set(statuses) == {"published", "unverified", "draft", "errored", "deleted"}
    assert statuses["published"] > SERVICES / 2


@pytest.mark.parametrize("key", ["services", "users", "projects", "providers", "categories"])
def test_ids_are_unique_and_have_gaps(dump, key):
    ids = [item["id"] for item in dump[key]]
    assert len(set(ids)) == len(ids)
    assert max(ids) - min(ids) + 1 > len(ids)


def test_optional_texts_are_sometimes_null(dump):
    for field in ("pid", "description", "tagline"):
        values = [s[field] for s in dump["services"]]
        assert None in values, field
        assert sum(v is not None for v in values) > SERVICES / 2, field
    assert None in [p["pid"] for p in dump["providers"]]
    assert None in [t["description"] for t in dump["target_users"]]


def test_services_are_fully_described(dump):
    providers = {p["id"] for p in dump["providers"]}
    for service in dump["services"]:
        assert service["categories"] and service["scientific_domains"]
        assert service["resource_organisation"] in service["providers"]
        assert set(service["providers"]) <= providers
        assert len(service["trls"]) == len(service["life_cycle_statuses"]) == 1
        assert float(service["rating"]) in {0.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0}
        assert service["id"] not in service["related_services"]
        assert set(service["required_services"]) <= set(service["related_services"])
    assert any(s["horizontal"] for s in dump["services"])


def test_orders_are_distinct_recommendable_services(dump):
    allowed = recommendable(dump)
    orders = [u["accessed_services"] for u in dump["users"]]
    assert all(set(o) <= allowed and len(set(o)) == len(o) for o in orders)
    assert sum(map(len, orders)) > 2 * USERS
    assert any(not o for o in orders)  # some users never ordered


def test_orders_follow_interests(dump):
    """A user's orders fall in the user's declared categories far more often than random
    recommendable services do."""
    categories = {s["id"]: set(s["categories"]) for s in dump["services"]}
    pool = sorted(recommendable(dump))
    in_interest = baseline = total = 0.0
    for user in dump["users"]:
        declared = set(user["categories"])
        if not declared or not user["accessed_services"]:
            continue
        orders = user["accessed_services"]
        in_interest += sum(bool(categories[s] & declared) for s in orders)
        chance = sum(bool(categories[s] & declared) for s in pool) / len(pool)
        baseline += chance * len(orders)
        total += len(orders)
    assert in_interest / total > 2.5 * baseline / total


def test_popularity_has_a_head_and_a_long_tail(dump):
    counts = sorted(
        Counter(s for u in dump["users"] for s in u["accessed_services"]).values(), reverse=True
    )
    head = len(recommendable(dump)) // 10
    assert sum(counts[:head]) > 0.3 * sum(counts)  # 10% of services: over 30% of orders
    assert counts[-1] <= 2


def test_projects_group_their_owners_orders(dump):
    users = {u["id"]: u for u in dump["users"]}
    assert dump["projects"]
    for project in dump["projects"]:
        assert project["services"]
        assert set(project["services"]) <= set(users[project["user_id"]]["accessed_services"])


def test_no_service_is_refused():
    with pytest.raises(ValueError):
        generate_marketplace(users=5, services=0, seed=1)
    tiny = generate_marketplace(users=0, services=1, seed=1)
    assert len(tiny["services"]) == 1
    assert tiny["users"] == tiny["projects"] == []
