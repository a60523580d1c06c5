"""The field rules every payload shares, one rule each (pydantic annotated types).

- Ids (`Int64`): JSON integers that fit MongoDB's signed 64-bit integers; anything else is an
  error naming the field (an id that cannot be stored cannot exist either).
- `UserId`: such an id, or its decimal text; "" and null mean "no user" (what the Marketplace
  sends for anonymous visitors).
- `Uuid`: any UUID spelling, stored in canonical text.
- `Timestamp`: ISO 8601 in every shape clients send (`...512+0100`, `...Z`, `...+01:00`), stored
  as naive UTC.
- `Text`: a string MongoDB can store (no lone surrogates, which JSON's \\ud800 escapes allow).
Each carries its JSON schema, so the OpenAPI document generated from the payload models shows
the same rule that validation applies.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from dateutil import parser as dateparser
from pydantic import Field, PlainValidator, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TIMESTAMP_EXAMPLE = "2024-02-21T15:19:43.512+0100"


def parse_client_timestamp(text: str) -> dt.datetime:
    """ISO 8601 in every shape clients send -> naive UTC; ValueError when it is none of them."""
    try:
        try:
            parsed = dt.datetime.fromisoformat(text)  # in C: much faster than dateutil
        except ValueError:
            parsed = dateparser.isoparse(text)
        if parsed.tzinfo is not None:  # may overflow, e.g. 9999-12-31T23:59:59-10:00
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError as error:
        raise ValueError(str(error)) from None
    return parsed


def check_int64(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise PydanticCustomError("int64", "must fit in a signed 64-bit integer")
    return value


def check_user_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 30:
        value = int(value)
    if isinstance(value, str):
        raise PydanticCustomError("user_id", 'must be an integer, or "" for an anonymous visitor')
    return check_int64(value)


def check_uuid(value: Any) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise PydanticCustomError("uuid", "must be a UUID")


def check_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            return parse_client_timestamp(value)
        except ValueError:
            pass
    raise PydanticCustomError(
        "date_time", f"must be an ISO 8601 date-time, e.g. {TIMESTAMP_EXAMPLE}"
    )


def check_text(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError("unicode", "is not valid Unicode text") from None
    return value


def _optional(check):
    def optional(value: Any):
        return None if value is None else check(value)

    return optional


_INT64_SCHEMA = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
_UUID_SCHEMA = {"type": "string", "format": "uuid"}

# Checked by pydantic's core, not a Python function: a dump holds millions of ids.
Int64 = Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]
Ids = Annotated[list[Int64], Field(description="Ids (signed 64-bit integers)")]
UserId = Annotated[
    int | None,
    PlainValidator(check_user_id),
    WithJsonSchema(
        {
            "anyOf": [_INT64_SCHEMA, {"type": "string", "pattern": "^[0-9]*$"}, {"type": "null"}],
            "description": 'Marketplace user id; "" or null for an anonymous visitor',
        }
    ),
]
Uuid = Annotated[str, PlainValidator(check_uuid), WithJsonSchema(_UUID_SCHEMA)]
OptionalUuid = Annotated[
    str | None,
    PlainValidator(_optional(check_uuid)),
    WithJsonSchema({"anyOf": [_UUID_SCHEMA, {"type": "null"}]}),
]
Timestamp = Annotated[
    dt.datetime,
    PlainValidator(check_timestamp),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": [TIMESTAMP_EXAMPLE]},
    ),
]
Text = Annotated[str, PlainValidator(check_text), WithJsonSchema({"type": "string"})]
OptionalText = Annotated[
    str | None,
    PlainValidator(_optional(check_text)),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]}),
]
