"""Structural validation of dumps: every problem is named by its field path."""

from __future__ import annotations

import pytest

from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import DUMP_KEYS, validate_dump
from recommender.errors import InvalidInputError
from tests.marketplace_dump import marketplace_dump


def errors_of(payload) -> dict[str, str]:
    with pytest.raises(InvalidInputError) as raised:
        validate_dump(payload)
    return raised.value.errors


def test_marketplace_shaped_dump_is_valid_and_keeps_only_known_fields():
    entities = validate_dump(marketplace_dump())
    assert set(entities) == set(DUMP_KEYS)
    assert "unknown_extra_key" not in entities["services"][0]
    assert entities["services"][0]["pid"] is None or isinstance(entities["services"][0]["pid"], str)


@pytest.mark.parametrize("key", DUMP_KEYS)
def test_missing_top_level_key_is_named(key):
    dump = marketplace_dump()
    del dump[key]
    assert key in errors_of(dump)


def test_wrong_types_are_named_with_their_path():
    dump = marketplace_dump()
    dump["services"][2]["categories"][0] = "10"
    dump["users"][1]["id"] = 1.5
    dump["services"][4]["horizontal"] = "yes"
    errors = errors_of(dump)
    assert "services.2.categories.0" in errors
    assert "users.1.id" in errors
    assert "services.4.horizontal" in errors


def test_missing_nested_key_and_null_required_text():
    dump = marketplace_dump()
    del dump["users"][0]["aai_uid"]
    dump["categories"][0]["name"] = None
    errors = errors_of(dump)
    assert "users.0.aai_uid" in errors
    assert "categories.0.name" in errors


def test_optional_texts_may_be_null():
    dump = marketplace_dump()
    dump["services"][0].update(description=None, tagline=None, pid=None)
    dump["target_users"][0]["description"] = None
    validate_dump(dump)


def test_duplicate_ids_are_refused():
    dump = marketplace_dump()
    dump["services"].append(dict(dump["services"][3]))
    errors = errors_of(dump)
    assert errors == {
        f"services.{len(dump['services']) - 1}.id": (
            f"Duplicate id {dump['services'][3]['id']} (first at services.3)"
        )
    }


def test_not_an_object():
    assert errors_of([1, 2]) == {"(root)": "The database dump must be a JSON object"}


def test_dangling_references_are_dropped_and_counted():
    entities = validate_dump(marketplace_dump())
    dropped = drop_dangling_references(entities)
    assert dropped == {
        "services.related_services": 1,
        "services.categories": 1,
        "services.resource_organisation": 1,
        "users.accessed_services": 1,
        "projects.services": 1,  # the first project lists the first user's dangling order
        "projects.user_id": 1,
    }
    services = {s["id"]: s for s in entities["services"]}
    assert 9999 not in services[1]["related_services"]
    assert services[7]["resource_organisation"] is None
    assert all(p["user_id"] != 424242 for p in entities["projects"])


def test_ids_outside_signed_64_bit_are_named_wherever_they_are():
    dump = marketplace_dump()
    dump["services"][3]["categories"][0] = 2**63  # one past int64's largest
    dump["users"][0]["accessed_services"].extend([1, 2**70])
    dump["projects"][0]["user_id"] = -(2**63) - 1
    dump["services"][1]["id"] = 2**63 - 1  # the largest: fine
    errors = errors_of(dump)
    assert set(errors) == {
        "services.3.categories.0",
        f"users.0.accessed_services.{len(dump['users'][0]['accessed_services']) - 1}",
        "projects.0.user_id",
    }


def test_an_id_beyond_64_bit_is_a_400_at_post_update_and_nothing_is_queued(client):
    from recommender.models import UpdateTask

    dump = marketplace_dump()
    dump["users"][0]["accessed_services"][2:] = [2**64]
    response = client.post("/update", json=dump)
    assert response.status_code == 400
    assert "users.0.accessed_services.2" in response.get_json()["errors"]
    assert UpdateTask.objects.count() == 0
