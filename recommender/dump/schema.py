"""The `/update` dump's structure, checked strictly and fast (pydantic) before anything changes."""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

MAX_REPORTED_ERRORS = 50
# Strict: 1.0, "1" or true is not an id. Extra keys are allowed and not kept.
STRICT = ConfigDict(strict=True, extra="ignore")

# TypedDicts, not models: pydantic validates straight into plain dicts, several times faster
# on a large dump than building model instances and dumping them back.


@with_config(STRICT)
class Named(TypedDict):
    id: int
    name: str


@with_config(STRICT)
class Described(Named):
    description: str | None


@with_config(STRICT)
class ProviderIn(Named):
    pid: str | None


@with_config(STRICT)
class ServiceIn(TypedDict):
    id: int
    pid: NotRequired[str | None]
    name: str
    description: str | None
    tagline: str | None
    countries: list[str]
    order_type: str | None
    rating: str | None
    categories: list[int]
    providers: list[int]
    resource_organisation: int | None
    scientific_domains: list[int]
    platforms: list[int]
    target_users: list[int]
    related_services: list[int]
    access_modes: list[int]
    access_types: list[int]
    trls: list[int]
    life_cycle_statuses: list[int]
    research_steps: list[int]
    horizontal: bool
    # Sent by the Marketplace though the original schema did not list them.
    status: NotRequired[str | None]
    required_services: NotRequired[list[int]]


@with_config(STRICT)
class UserIn(TypedDict):
    id: int
    aai_uid: str
    scientific_domains: list[int]
    categories: list[int]
    accessed_services: list[int]


@with_config(STRICT)
class ProjectIn(TypedDict):
    id: int
    user_id: int
    services: list[int]


@with_config(STRICT)
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


class DumpValidationError(Exception):
    """The dump is structurally wrong; `errors` maps each field path to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(f"Invalid database dump: {len(errors)} error(s)")
        self.errors = errors


def _path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def validate_dump(payload: Any) -> dict[str, list[dict]]:
    """Check the dump's structure and id uniqueness; return each kind's entities as plain dicts."""
    if not isinstance(payload, dict):
        raise DumpValidationError({"(root)": "The database dump must be a JSON object"})
    try:
        entities = DUMP_ADAPTER.validate_python(payload)  # new dicts: the payload is not changed
    except ValidationError as error:
        errors: dict[str, str] = {}
        for item in error.errors()[:MAX_REPORTED_ERRORS]:
            errors.setdefault(_path(item["loc"]), item["msg"])
        raise DumpValidationError(errors) from None
    for service in entities["services"]:  # the optional keys, when the dump leaves them out
        service.setdefault("pid", None)
        service.setdefault("status", None)
        service.setdefault("required_services", [])
    duplicates = _duplicate_ids(entities)
    if duplicates:
        raise DumpValidationError(duplicates)
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
