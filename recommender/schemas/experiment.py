"""`/experiments`: an online experiment as clients create it and read it back."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recommender.schemas.recommendation import ClientId

SHARES_TOLERANCE = 1e-9
Panel = Literal["v1", "v2"]


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Variant", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=64, examples=["control"])
    engine: str = Field(min_length=1, description="A served engine name", examples=["NCF"])
    share: float = Field(gt=0, le=1, description="Share of the experiment's traffic")


class ExperimentIn(BaseModel):
    """A new experiment: shares sum to 1, variant names differ, engines are served ones."""

    model_config = ConfigDict(extra="forbid", title="New experiment", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200, examples=["ncf-vs-popularity"])
    variants: list[VariantIn] = Field(
        min_length=2,
        description="The first variant is the control every other is compared with",
    )
    panels: list[Panel] = Field(
        default_factory=list, description="Panels in scope (absent or empty: all)"
    )
    clients: list[ClientId] = Field(
        default_factory=list, description="Clients in scope (absent or empty: all)"
    )

    @field_validator("variants")
    @classmethod
    def _a_partition_of_traffic(cls, variants: list[VariantIn]) -> list[VariantIn]:
        names = [variant.name for variant in variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must differ")
        total = sum(variant.share for variant in variants)
        if abs(total - 1.0) > SHARES_TOLERANCE:
            raise ValueError(f"variant shares must sum to 1, not {total:g}")
        return variants


class ExperimentView(BaseModel):
    """An experiment as `GET /experiments/<id>` shows it."""

    model_config = ConfigDict(title="Experiment")
    id: str
    name: str
    status: Literal["running", "stopped"]
    variants: list[VariantIn]
    panels: list[str] = Field(description="Empty: every panel")
    clients: list[str] = Field(description="Empty: every client")
    created_at: dt.datetime
    stopped_at: dt.datetime | None = None
    results: dict[str, Any] = Field(
        default_factory=dict, description="Per variant counts and rates, and the comparison"
    )
    results_at: dt.datetime | None = Field(None, description="When the results were computed")
