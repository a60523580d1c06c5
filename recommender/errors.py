"""The errors every layer may raise and the API maps to status codes (see api/errors.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class InvalidInputError(ValueError):
    """Client input that is wrong: 400, with `errors` mapping each bad field (dotted path) to
    what is wrong with it."""

    def __init__(self, errors: dict[str, str], message: str = "Input payload validation failed"):
        super().__init__(f"{message}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.message = message


class ConflictError(RuntimeError):
    """The request conflicts with the service's state (409): `details` say how; the client may
    repeat it with the override the message names."""

    def __init__(self, message: str, details: dict[str, Any]):
        super().__init__(message)
        self.message = message
        self.details = details


class UnavailableError(RuntimeError):
    """Something the request needs is unreachable right now (503, with this message)."""


def field_path(loc: Iterable[Any]) -> str:
    """A pydantic error location as a dotted field path."""
    return ".".join(str(part) for part in loc) or "(root)"


def pydantic_errors(errors: Iterable[dict], limit: int | None = None) -> dict[str, str]:
    """pydantic's `ValidationError.errors()` as {field path: first problem}."""
    found: dict[str, str] = {}
    for item in errors:
        if limit is not None and len(found) >= limit:
            break
        if item["type"] == "missing":
            message = f"'{item['loc'][-1]}' is a required property"
        elif item["type"] == "value_error":
            message = str(item["ctx"]["error"])
        else:
            message = item["msg"]
        found.setdefault(field_path(item["loc"]), message)
    return found
