"""flask-restx field types the API's models share (they only shape the Swagger schema)."""

from __future__ import annotations

from flask_restx import fields


class NullableString(fields.String):
    __schema_type__ = ["string", "null"]


class Uuid(fields.String):
    __schema_format__ = "uuid"


class NullableUuid(Uuid):
    __schema_type__ = ["string", "null"]


class UserId(fields.String):
    """The Marketplace sends an integer id, or "" for an anonymous visitor."""

    __schema_type__ = ["integer", "string", "null"]


# Fields both request bodies share (the Marketplace sends them alike in both).
USER_ID = UserId(
    pattern="^[0-9]*$",
    description='Marketplace user id; "" or absent for an anonymous visitor',
    example=1234,
)
UNIQUE_ID = Uuid(
    required=True,
    description="UUID of the visitor's browser",
    example="5642c351-80fe-44cf-b606-304f2f338122",
)
TIMESTAMP = fields.DateTime(
    required=True,
    description="ISO 8601; `2024-02-21T15:19:43.512+0100`, `...Z` and `...+01:00` shapes",
    example="2024-02-21T15:19:43.512+0100",
)
