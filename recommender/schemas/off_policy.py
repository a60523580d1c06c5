"""`GET /evaluation/off-policy`: its query and its answer (documented in Swagger from here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recommender.errors import InvalidInputError, pydantic_errors


class OffPolicyQuery(BaseModel):
    """The query string: which engines, over how many logged recommendations."""

    model_config = ConfigDict(extra="ignore", title="Off-policy query")
    engines: list[str] | None = Field(
        None, description="Comma-separated enabled top-K engines (default: all of them)"
    )
    max_logged: int | None = Field(
        None, ge=1, description="The newest logged recommendations to use (default and most: "
        "OFF_POLICY_MAX_LOGGED)"
    )  # fmt: skip

    @field_validator("engines", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            names = [name.strip() for name in value.split(",") if name.strip()]
            if not names:
                raise ValueError("name at least one engine, or leave it out for all")
            return names
        return value


def parse_query(args: Mapping[str, str]) -> OffPolicyQuery:
    """The checked query; InvalidInputError names each bad parameter."""
    try:
        return OffPolicyQuery.model_validate(dict(args))
    except ValidationError as error:
        raise InvalidInputError(pydantic_errors(error.errors(include_url=False))) from None


class Interval(BaseModel):
    model_config = ConfigDict(title="Off-policy estimate")
    value: float = Field(description="Estimated expected slate reward per request")
    ci: list[float] = Field(
        min_length=2, max_length=2, description="95% percentile bootstrap interval [low, high]"
    )


class EngineEstimates(BaseModel):
    model_config = ConfigDict(title="Off-policy engine estimates")
    ips: Interval | None = Field(description="Inverse propensity scoring (per position)")
    snips: Interval | None = Field(description="Self-normalised IPS (per position)")
    dr: Interval | None = Field(description="Doubly robust, with the report's reward model")
    status: Literal["ok", "not trained", "no data", "failed"]
    n: int = Field(description="Logged recommendations this engine's estimates use")
    unsupported_mass: float | None = Field(
        description=(
            "The engine's expected number of positions per request on services the logging "
            "policy could not show there (IPS and SNIPS miss that part); null: unknown"
        )
    )
    support_unknown: int = Field(
        description="Requests where the logging policy's support could not be replayed"
    )
    reason: str | None = Field(None, description="Why there are no estimates")


class OffPolicyView(BaseModel):
    model_config = ConfigDict(title="Off-policy report")
    logged: int = Field(description="Logged recommendations with propensities used")
    engines: dict[str, EngineEstimates] = Field(description="Per enabled top-K engine")
