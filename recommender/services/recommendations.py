"""`POST /recommendations` behind the HTTP layer: check, pick an engine, answer, book-keep.

The request path touches no database: the catalogue and users come from the in-memory
catalogue, models from the model cache, and the Recommendation document is handed to the
deferred writer. A Marketplace one is stored as the databus outbox (`published` False, with the
request as received): a worker's periodic task sends it (recommender.databus.publisher).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from pydantic import ValidationError

from recommender.catalogue import EMPTY_IDS
from recommender.engines.base.engine import EngineResult, RecommendationContext
from recommender.engines.registry import Choice, Registry
from recommender.errors import InvalidInputError, pydantic_errors
from recommender.metrics import (
    ENGINE_FAILURES,
    ENGINE_LATENCY,
    EXPERIMENT_FALLBACKS,
    EXPERIMENT_IMPRESSIONS,
    RECOMMENDATIONS_SERVED,
)
from recommender.models.activity import Recommendation
from recommender.models.ops import utcnow
from recommender.schemas.recommendation import (
    STORED_SEARCH_FIELDS,
    RecommendationRequest,
)
from recommender.services.bookkeeping import writer
from recommender.services.experiments.assignment import Assignment
from recommender.services.runtime import runtime
from recommender.services.serving_policy import ServingPolicy, record
from recommender.services.traffic import count_served

logger = logging.getLogger(__name__)


def parse(body: bytes | str) -> RecommendationRequest:
    """The checked request from the raw JSON body (parsed and validated in one pass by
    pydantic's JSON parser); InvalidInputError names every bad field."""
    try:
        return RecommendationRequest.model_validate_json(body)
    except ValidationError as error:
        raise InvalidInputError(pydantic_errors(error.errors(include_url=False))) from None


def run_engines(
    engines: Registry,
    requested: str | None,
    k: int,
    context: RecommendationContext,
    policy: ServingPolicy,
) -> tuple[Choice, EngineResult]:
    """The first ready engine's answer as `policy` serves it (an engine that fails is logged
    and the next tried)."""
    for choice in engines.select(requested, anonymous=context.anonymous):
        started = time.perf_counter()
        try:
            result = policy.answer(choice.engine, context, k, choice.ranking)
        except Exception:
            ENGINE_FAILURES.labels(choice.name).inc()
            logger.exception("Engine %s failed; trying the next one", choice.name)
            continue
        ENGINE_LATENCY.labels(choice.name).observe(time.perf_counter() - started)
        return choice, result
    raise RuntimeError("No engine could answer (the Random floor failed)")


def outbox_fields(body: bytes | str, result: EngineResult) -> dict:
    """What a stored recommendation adds to be published: the flag, and what the message has
    that the document does not (the request as received, the explanations)."""
    return {
        "published": False,
        "request": body if isinstance(body, str) else body.decode(),
        "explanations": result.explanations,
        "explanations_short": result.explanations_short,
    }


def book(
    request: RecommendationRequest,
    user_id: int | None,
    candidates: np.ndarray,
    choice: Choice,
    result: EngineResult,
    assignment: Assignment | None,
    outbox: dict | None = None,
) -> None:
    """Store the served recommendation (off the request path: the id arrays become stored
    lists when the writer flushes) with the policy that chose it and its propensities;
    `outbox`: its `outbox_fields` when it is to be published."""
    engine = choice.name
    document = {
        "user": user_id,
        "aai_uid": request.aai_uid,
        "unique_id": request.unique_id,
        "client_id": request.client_id,
        "timestamp": request.timestamp,
        "visit_id": request.visit_id,
        "page_id": request.page_id,
        "panel_id": request.panel,
        "engine_version": engine,
        "services": np.asarray(result.services, dtype=np.int64),
        "scores": result.scores,
        "candidates": candidates,
        "search_data": request.search_data.model_dump(include=STORED_SEARCH_FIELDS),
        "processed": False,
        "served_at": utcnow(),
        "experiment": assignment.experiment if assignment else None,
        "variant": assignment.variant if assignment else None,
        **record(engine, choice.engine, result, assignment),
    }
    if outbox:
        document.update(outbox)
    writer.insert(Recommendation._get_collection(), document)


def recommend(body: bytes | str) -> dict[str, Any]:
    """The response to a raw request body ("Recommendation context"); InvalidInputError if bad."""
    request = parse(body)
    current = runtime()
    catalogue = current.catalogue()
    user = catalogue.user(request.user_id, request.aai_uid)
    sent = np.asarray(request.candidates, dtype=np.int64)
    context = RecommendationContext(
        candidates=catalogue.eligible(sent, user.accessed_services if user else EMPTY_IDS),
        panel_id=request.panel,
        user_id=user.id if user else None,
        search_data=request.search_data.model_dump(),
        accessed_services=tuple(user.accessed_services.tolist()) if user else (),
        unique_id=request.unique_id,
        timestamp=request.timestamp,
    )
    # In an experiment's scope the variant's engine is asked for, whatever the request names.
    visitor = str(user.id) if user else request.unique_id
    assignment = current.experiments.assign(request.panel, request.client_id, visitor)
    requested = assignment.engine if assignment else request.engine_version
    choice, result = run_engines(current.engines, requested, request.k, context, current.policy)
    engine = choice.name
    RECOMMENDATIONS_SERVED.labels(engine, request.panel).inc()
    count_served(engine, request.panel)
    response = {
        "panel_id": request.panel,
        "recommendations": result.services,
        "scores": result.scores,
        "explanations": result.explanations,
        "explanations_short": result.explanations_short,
        "engine_version": engine,
    }
    if assignment is not None:
        response["experiment"] = {"id": assignment.experiment, "variant": assignment.variant}
        if engine != assignment.engine:
            EXPERIMENT_FALLBACKS.labels(assignment.experiment, assignment.variant).inc()
    if result.services:
        # The candidates as sent, or every recommendable service when none were.
        completed = sent if len(sent) else catalogue.recommendable_ids
        published = request.client_id == "marketplace" and current.settings.RS_DATABUS_ENABLED
        outbox = outbox_fields(body, result) if published else None
        book(request, context.user_id, completed, choice, result, assignment, outbox)
        if assignment is not None:
            EXPERIMENT_IMPRESSIONS.labels(assignment.experiment, assignment.variant).inc()
    return response
