"""The `/update` dump's structure, checked strictly and fast (pydantic) before anything changes."""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from recommender.errors import InvalidInputError, pydantic_errors
from recommender.schemas.validators import Int64

MAX_REPORTED_ERRORS = 50


def strict(title: str) -> ConfigDict:
    """Strict: 1.0, "1" or true is not an id. Extra keys are allowed and not kept."""
    return ConfigDict(strict=True, extra="ignore", title=title)


Ids = list[Int64]

# TypedDicts, not models: pydantic validates straight into plain dicts, several times faster
# on a large dump than building model instances and dumping them back.


@with_config(strict("Named"))
class Named(TypedDict):
    id: Int64
    name: str


@with_config(strict("Described"))
class Described(Named):
    description: str | None


@with_config(strict("Provider"))
class ProviderIn(Named):
    pid: str | None


@with_config(strict("Service"))
class ServiceIn(TypedDict):
    id: Int64
    pid: NotRequired[str | None]
    name: str
    description: str | None
    tagline: str | None
    countries: list[str]
    order_type: str | None
    rating: str | None
    categories: Ids
    providers: Ids
    resource_organisation: Int64 | None
    scientific_domains: Ids
    platforms: Ids
    target_users: Ids
    related_services: Ids
    access_modes: Ids
    access_types: Ids
    trls: Ids
    life_cycle_statuses: Ids
    research_steps: Ids
    horizontal: bool
    # Sent by the Marketplace though the original schema did not list them.
    status: NotRequired[str | None]
    required_services: NotRequired[Ids]


@with_config(strict("User"))
class UserIn(TypedDict):
    id: Int64
    aai_uid: str
    scientific_domains: Ids
    categories: Ids
    accessed_services: Ids


@with_config(strict("Project"))
class ProjectIn(TypedDict):
    id: Int64
    user_id: Int64
    services: Ids


@with_config(strict("Database dump"))
class DumpIn(TypedDict):
    services: list[ServiceIn]
    users: list[UserIn]
    projects: list[ProjectIn]
    categories: list[Named]
    providers: list[ProviderIn]
    scientific_domains: list[Named]
    platforms: list[Named]
    target_users: list[Described]
    access_modes: list[Described]
    access_types: list[Described]
    trls: list[Described]
    life_cycle_statuses: list[Described]
    research_steps: list[Described]


DUMP_KEYS = tuple(DumpIn.__annotations__)
DUMP_ADAPTER = TypeAdapter(DumpIn)


INVALID_DUMP = "Invalid database dump"


def validate_dump(payload: Any) -> dict[str, list[dict]]:
    """Check the dump's structure and id uniqueness; return each kind's entities as plain dicts
    (InvalidInputError names every bad field otherwise)."""
    if not isinstance(payload, dict):
        raise InvalidInputError({"(root)": "The database dump must be a JSON object"}, INVALID_DUMP)
    try:
        entities = DUMP_ADAPTER.validate_python(payload)  # new dicts: the payload is not changed
    except ValidationError as error:
        errors = pydantic_errors(error.errors(include_url=False), MAX_REPORTED_ERRORS)
        raise InvalidInputError(errors, INVALID_DUMP) from None
    for service in entities["services"]:  # the optional keys, when the dump leaves them out
        service.setdefault("pid", None)
        service.setdefault("status", None)
        service.setdefault("required_services", [])
    duplicates = _duplicate_ids(entities)
    if duplicates:
        raise InvalidInputError(duplicates, INVALID_DUMP)
    return entities


def _duplicate_ids(entities: dict[str, list[dict]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key, items in entities.items():
        first_seen: dict[int, int] = {}
        for index, item in enumerate(items):
            earlier = first_seen.setdefault(item["id"], index)
            if earlier != index and len(errors) < MAX_REPORTED_ERRORS:
                errors[f"{key}.{index}.id"] = (
                    f"Duplicate id {item['id']} (first at {key}.{earlier})"
                )
    return errors
