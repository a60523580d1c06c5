"""`POST /recommendations`: the request ("Recommendation context") and the response."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.panels import PANEL_ALIASES, PANEL_K
from recommender.schemas.validators import (
    Ids,
    OptionalText,
    OptionalUuid,
    Timestamp,
    UserId,
    Uuid,
)

CLIENT_IDS = ("marketplace", "search_service", "user_dashboard", "undefined")
ClientId = Literal["marketplace", "search_service", "user_dashboard", "undefined"]
# The search data kept with a stored recommendation: everything but `rating`, which the original
# accepted and never stored.
SEARCH_ID_LISTS = (
    "categories",
    "providers",
    "related_platforms",
    "scientific_domains",
    "target_users",
)
STORED_SEARCH_FIELDS = {*SEARCH_ID_LISTS, "q", "geographical_availabilities", "order_type", "sort"}
IDS_DESCRIPTION = "Ids; the Marketplace already includes descendant ids"


class SearchData(BaseModel):
    """The search the panel is shown for (`{}` is common)."""

    model_config = ConfigDict(strict=True, extra="ignore", title="Search Data")
    # default_factory: a fresh list is cheaper than pydantic's deep copy of a `[]` default.
    q: OptionalText = Field(None, description="Search text", examples=["cloud storage"])
    categories: Ids = Field(default_factory=list, description=IDS_DESCRIPTION)
    geographical_availabilities: list[str] = Field(
        default_factory=list, description="Country codes", examples=[["WW", "PL"]]
    )
    order_type: OptionalText = Field(None, examples=["open_access"])
    providers: Ids = Field(default_factory=list, description=IDS_DESCRIPTION)
    rating: OptionalText = Field(None, description="Accepted, not used", examples=["5"])
    related_platforms: Ids = Field(default_factory=list, description=IDS_DESCRIPTION)
    scientific_domains: Ids = Field(default_factory=list, description=IDS_DESCRIPTION)
    sort: OptionalText = Field(None, examples=["_score"])
    target_users: Ids = Field(default_factory=list, description=IDS_DESCRIPTION)


class RecommendationRequest(BaseModel):
    """Checked in one pass: structure and types (strict, as the original's JSON schema; extra
    keys allowed), then UUIDs, the timestamp (naive UTC) and the user id."""

    model_config = ConfigDict(
        strict=True, extra="ignore", frozen=True, title="Recommendation context"
    )
    user_id: UserId = None
    aai_uid: OptionalText = Field(
        None,
        description="AAI id of the logged-in user (used when user_id is absent)",
        examples=["abc@egi.eu"],
    )
    unique_id: Uuid = Field(description="UUID of the visitor's browser")
    client_id: ClientId | None = Field(
        None,
        description="Only `marketplace` answers are also published to the databus",
        examples=["marketplace"],
    )
    timestamp: Timestamp
    visit_id: OptionalUuid = Field(
        description="UUID of the page visit showing the panel; null on a first view"
    )
    page_id: str = Field(examples=["/services"])
    panel_id: Literal["v1", "v2", "service", ""] = Field(
        "v1", description="`v1` (3 services), `v2` (2); `service`, empty or absent mean `v1`"
    )
    engine_version: OptionalText = Field(
        None,
        description=(
            "Preferred engine (case-insensitive; unknown names are ignored); absent: "
            "DEFAULT_RECOMMENDATION_ALG (Auto: the champion engine). A ranking variant "
            "(AutoRanking, NCFRanking, ...) answers with every candidate, ordered"
        ),
        examples=["RL"],
    )
    candidates: Ids = Field(
        default_factory=list,
        description="Service ids from the search; empty or absent: every service",
        examples=[[1, 2, 3, 4, 5, 6]],
    )
    search_data: SearchData

    @property
    def panel(self) -> str:
        """The effective panel: `service` and empty mean `v1`."""
        return PANEL_ALIASES.get(self.panel_id, self.panel_id)

    @property
    def k(self) -> int:
        return PANEL_K[self.panel]


class ExperimentTag(BaseModel):
    model_config = ConfigDict(title="Experiment assignment")
    id: str = Field(description="The experiment's id")
    variant: str = Field(description="The visitor's variant (the same on every request)")


class Recommendations(BaseModel):
    """The answer; empty lists when nothing fits."""

    model_config = ConfigDict(title="Recommendations")
    panel_id: str = Field(examples=["v1"])
    recommendations: list[int] = Field(examples=[[4, 1, 6]])
    scores: list[float] = Field(examples=[[0.9, 0.7, 0.4]])
    explanations: list[str] = Field(description="One per service")
    explanations_short: list[str] = Field(description="One per service")
    engine_version: str = Field(description="The engine really used", examples=["NCF"])
    experiment: ExperimentTag | None = Field(
        None, description="Present only when the request fell in a running experiment"
    )
