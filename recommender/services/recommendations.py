"""`POST /recommendations` behind the HTTP layer: check, pick an engine, answer, book-keep.

The request path touches no database: the catalogue and users come from the in-memory
catalogue, models from the model cache, and the Recommendation document (plus the databus
publication for the Marketplace) is handed to the deferred writer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
from flask import current_app
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from recommender.api.errors import PayloadError
from recommender.engines import registry
from recommender.engines.base.engine import EngineResult, RecommendationContext
from recommender.metrics import ENGINE_LATENCY, RECOMMENDATIONS_SERVED
from recommender.models.activity import Recommendation
from recommender.panels import PANEL_ALIASES, PANEL_K
from recommender.services.bookkeeping import writer
from recommender.services.catalogue import EMPTY_IDS, catalogue, int64_ids
from recommender.services.timestamps import parse_client_timestamp

logger = logging.getLogger(__name__)
SEARCH_ID_LISTS = (
    "categories",
    "providers",
    "related_platforms",
    "scientific_domains",
    "target_users",
)
# Search data as stored: everything but `rating`, which the original accepted and never stored.
STORED_SEARCH_FIELDS = {*SEARCH_ID_LISTS, "q", "geographical_availabilities", "order_type", "sort"}


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PydanticCustomError("uuid", "must be a UUID") from None


def parse_timestamp(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return parse_client_timestamp(value)
    except ValueError:
        raise PydanticCustomError(
            "date_time", "must be an ISO 8601 date-time, e.g. 2024-02-21T15:19:43.512+0100"
        ) from None


def _user_id(value: Any) -> int | None:
    """An integer; "" (what the Marketplace sends for anonymous visitors) or null is None."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 100:
        return int(value)
    raise PydanticCustomError("user_id", 'must be an integer, or "" for an anonymous visitor')


Uuid = Annotated[str, AfterValidator(_uuid)]
Ids = list[int]
Text = str | None


class SearchDataIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    # default_factory: a fresh list is cheaper than pydantic's deep copy of a `[]` default.
    q: Text = None
    categories: Ids = Field(default_factory=list)
    geographical_availabilities: list[str] = Field(default_factory=list)
    order_type: Text = None
    providers: Ids = Field(default_factory=list)
    rating: Text = None
    related_platforms: Ids = Field(default_factory=list)
    scientific_domains: Ids = Field(default_factory=list)
    sort: Text = None
    target_users: Ids = Field(default_factory=list)


class RecommendationRequest(BaseModel):
    """The request body ("Recommendation context"), checked in one pass: structure and types
    (strict, as the original's JSON schema; extra keys allowed), then UUIDs, the timestamp
    (naive UTC) and the user id ("" means anonymous)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    user_id: Annotated[int | None, PlainValidator(_user_id)] = None
    aai_uid: Text = None
    unique_id: Uuid
    client_id: Literal["marketplace", "search_service", "user_dashboard", "undefined"] | None = None
    timestamp: Annotated[dt.datetime, PlainValidator(parse_timestamp)]
    visit_id: Uuid | None
    page_id: str
    panel_id: Literal["v1", "v2", "service", ""] = "v1"
    engine_version: Text = None
    candidates: Ids = Field(default_factory=list)
    search_data: SearchDataIn

    @property
    def panel(self) -> str:
        """The effective panel: `service` and empty mean `v1`."""
        return PANEL_ALIASES.get(self.panel_id, self.panel_id)

    @property
    def k(self) -> int:
        return PANEL_K[self.panel]


def _path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def parse(body: bytes | str) -> RecommendationRequest:
    """The checked request from the raw JSON body (parsed and validated in one pass by
    pydantic's JSON parser); a PayloadError names every bad field."""
    try:
        return RecommendationRequest.model_validate_json(body)
    except ValidationError as error:
        errors: dict[str, str] = {}
        for item in error.errors():
            errors.setdefault(_path(item["loc"]), item["msg"])
        raise PayloadError(errors) from None


def run_engines(request: RecommendationRequest, context: RecommendationContext):
    """The first ready engine's answer (an engine that fails is logged and the next tried)."""
    for choice in registry.select(request.engine_version, anonymous=context.anonymous):
        started = time.perf_counter()
        try:
            result = choice.engine.answer(context, request.k, choice.ranking)
        except Exception:
            logger.exception("Engine %s failed; trying the next one", choice.engine.name)
            continue
        ENGINE_LATENCY.labels(choice.engine.name).observe(time.perf_counter() - started)
        return choice.engine.name, result
    raise RuntimeError("No engine could answer (the Random floor failed)")


def publish_recommendation(context: dict, response: dict) -> None:
    """The seam to the databus publisher, imported late so serving does not need it loaded."""
    from recommender.databus import publish_recommendation as publish

    publish(context, response)


def _publish(body: bytes | str, panel_id: str, candidates: list[int], response: dict) -> None:
    """Deferred: the context is the request body completed with the panel and candidates."""
    context = {**json.loads(body), "panel_id": panel_id, "candidates": candidates}
    publish_recommendation(context, response)


def book(
    request: RecommendationRequest,
    user_id: int | None,
    candidates: list[int],
    engine: str,
    result: EngineResult,
) -> None:
    search_data = request.search_data.model_dump(include=STORED_SEARCH_FIELDS)
    for key in SEARCH_ID_LISTS:  # MongoDB integers are 8 bytes: larger ids match nothing anyway
        search_data[key] = int64_ids(search_data[key]).tolist()
    writer.insert(
        Recommendation._get_collection(),
        {
            "user": user_id,
            "aai_uid": request.aai_uid,
            "unique_id": request.unique_id,
            "client_id": request.client_id,
            "timestamp": request.timestamp,
            "visit_id": request.visit_id,
            "page_id": request.page_id,
            "panel_id": request.panel,
            "engine_version": engine,
            "services": result.services,
            "scores": result.scores,
            "candidates": candidates,
            "search_data": search_data,
            "processed": False,
        },
    )


def recommend(body: bytes | str) -> dict:
    """The response to a raw request body ("Recommendation context"); PayloadError if bad."""
    request = parse(body)
    current = catalogue()
    user = current.user(request.user_id, request.aai_uid)
    sent = int64_ids(request.candidates)
    looked_up = current.rows(sent)
    context = RecommendationContext(
        candidates=current.eligible(sent, user.accessed_services if user else EMPTY_IDS, looked_up),
        panel_id=request.panel,
        user_id=user.id if user else None,
        search_data=request.search_data.model_dump(),
        accessed_services=tuple(user.accessed_services.tolist()) if user else (),
        unique_id=request.unique_id,
        timestamp=request.timestamp,
    )
    engine, result = run_engines(request, context)
    RECOMMENDATIONS_SERVED.labels(engine, request.panel).inc()
    response = {
        "panel_id": request.panel,
        "recommendations": result.services,
        "scores": result.scores,
        "explanations": result.explanations,
        "explanations_short": result.explanations_short,
        "engine_version": engine,
    }
    if result.services:
        # The candidates as sent (ids beyond 64 bits left out), or every recommendable service.
        completed = (
            current.id_list(sent, looked_up)
            if len(sent)
            else current.id_list(current.recommendable_ids)
        )
        # Stored as the catalogue's own ints, like the candidates (a ranking holds ~900).
        stored = replace(result, services=current.id_list(np.asarray(result.services)))
        book(request, context.user_id, completed, engine, stored)
        if request.client_id == "marketplace":
            app = current_app._get_current_object()
            writer.call(app, _publish, body, request.panel, completed, response)
    return response
