"""The shared field rules (schemas/validators.py): one rule each, used by every payload."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ValidationError

from recommender.schemas.validators import (
    INT64_MAX,
    INT64_MIN,
    Ids,
    OptionalUuid,
    Text,
    Timestamp,
    UserId,
    Uuid,
)


class Fields(BaseModel):
    ids: Ids = []
    user: UserId = None
    uuid: Uuid = "00000000-0000-0000-0000-000000000000"
    visit: OptionalUuid = None
    when: Timestamp = dt.datetime(2024, 1, 1)
    text: Text = ""


def error_of(**values) -> str:
    with pytest.raises(ValidationError) as raised:
        Fields(**values)
    [error] = raised.value.errors()
    return ".".join(map(str, error["loc"]))


def test_ids_are_signed_64_bit_integers_and_nothing_else():
    assert Fields(ids=[INT64_MIN, 0, INT64_MAX]).ids == [INT64_MIN, 0, INT64_MAX]
    for bad in (INT64_MAX + 1, INT64_MIN - 1, True, "1", 1.0):
        assert error_of(ids=[7, bad]) == "ids.1"


@pytest.mark.parametrize(("given", "expected"), [("", None), (None, None), (42, 42), ("42", 42)])
def test_a_user_id_is_an_integer_or_its_text_and_empty_means_anonymous(given, expected):
    assert Fields(user=given).user == expected


@pytest.mark.parametrize("bad", [True, 1.5, "abc", "-3", str(INT64_MAX + 1), INT64_MAX + 1])
def test_other_user_ids_are_refused(bad):
    assert error_of(user=bad) == "user"


def test_uuids_are_stored_canonical():
    assert Fields(uuid="5642C35180FE44CFB606304F2F338122").uuid == (
        "5642c351-80fe-44cf-b606-304f2f338122"
    )
    assert Fields(visit=None).visit is None
    assert error_of(uuid="visit-1") == "uuid"
    assert error_of(visit="") == "visit"


@pytest.mark.parametrize(
    "text",
    ["2024-02-21T15:19:43.512+0100", "2024-02-21T14:19:43.512Z", "2024-02-21T15:19:43.512+01:00"],
)
def test_every_client_timestamp_shape_is_naive_utc(text):
    assert Fields(when=text).when == dt.datetime(2024, 2, 21, 14, 19, 43, 512000)


@pytest.mark.parametrize("bad", ["yesterday", 1708525183, "9999-12-31T23:59:59-10:00"])
def test_other_timestamps_are_refused(bad):
    assert error_of(when=bad) == "when"


def test_text_that_mongodb_cannot_store_is_refused():
    assert Fields(text="café").text == "café"
    assert error_of(text="\ud800") == "text"
    assert error_of(text=3) == "text"


def test_the_rules_are_in_the_generated_schema():
    properties = Fields.model_json_schema()["properties"]
    assert properties["ids"]["items"] == {
        "maximum": INT64_MAX,
        "minimum": INT64_MIN,
        "type": "integer",
    }
    assert properties["uuid"]["format"] == "uuid"
    assert properties["when"]["format"] == "date-time"
