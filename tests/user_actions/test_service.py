"""The ingestion functions shared by HTTP and the databus."""

from __future__ import annotations

import pytest

from recommender.errors import InvalidInputError
from recommender.models.activity import UserAction
from recommender.schemas.user_action import validate_user_action
from recommender.services.user_actions import store_actions, store_user_action
from tests.user_actions.payloads import REMOVE, user_action


def test_store_user_action_tells_new_from_already_stored(app):
    body = user_action()
    assert store_user_action(body, "databus") is True
    assert store_user_action(body, "http") is False
    [stored] = UserAction._get_collection().find()
    assert stored["channel"] == "databus"  # the first channel wins


def test_a_batch_with_repeated_actions_stores_each_once(app):
    first, second = user_action(), user_action()
    actions = [validate_user_action(b) for b in (first, second, first, second, first)]
    assert store_actions(actions, "databus") == [True, True, False, False, False]
    assert store_actions(actions[:2], "databus") == [False, False]
    assert UserAction.objects.count() == 2


def test_the_databus_accepts_any_client_name(app):
    body = user_action(client_id="provider_portal")
    with pytest.raises(InvalidInputError) as error:
        validate_user_action(body)
    assert set(error.value.errors) == {"client_id"}
    assert validate_user_action(body, known_clients_only=False).client_id == "provider_portal"


def test_every_bad_field_is_named_at_once(app):
    body = user_action(unique_id="x", timestamp="y", target__page_id=REMOVE, action__order=1)
    with pytest.raises(InvalidInputError) as error:
        validate_user_action(body)
    assert set(error.value.errors) == {
        "unique_id",
        "timestamp",
        "target.page_id",
        "action.order",
    }
    assert "required" in error.value.errors["target.page_id"]


@pytest.mark.parametrize("payload", [None, [], "text", 5])
def test_a_payload_that_is_not_an_object_is_refused(app, payload):
    with pytest.raises(InvalidInputError):
        validate_user_action(payload)


def test_a_naive_timestamp_is_taken_as_utc(app):
    action = validate_user_action(user_action(timestamp="2024-02-21T15:19:43"))
    assert action.timestamp.isoformat() == "2024-02-21T15:19:43"
