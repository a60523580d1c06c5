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
