"""Creating, listing and stopping experiments; what clients see of one."""

from __future__ import annotations

import secrets
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pydantic import ValidationError

from recommender.engines.registry import Registry
from recommender.errors import InvalidInputError, pydantic_errors
from recommender.models.experiments import RUNNING, STAMP, STOPPED, Experiment, Variant
from recommender.models.ops import utcnow
from recommender.schemas.experiment import ExperimentIn, ExperimentView
from recommender.store import stamps


class UnknownExperimentError(LookupError):
    """No experiment with that id (404)."""


def create(payload: Any, engines: Registry) -> Experiment:
    """A running experiment from a client's definition; InvalidInputError names each bad field
    (shares, names, an engine `engines` does not serve, a scope that overlaps a running one)."""
    definition = _parse(payload)
    errors = _engine_errors(definition, engines) | _overlap_errors(definition)
    if errors:
        raise InvalidInputError(errors, "Invalid experiment")
    experiment = Experiment(
        name=definition.name,
        variants=[
            Variant(name=v.name, engine=engines.find(v.engine).name, share=v.share)
            for v in definition.variants
        ],
        panels=sorted(definition.panels),
        clients=sorted(definition.clients),
        status=RUNNING,
        salt=secrets.token_hex(8),
    ).save()
    stamps.bump(STAMP)
    return experiment


def _parse(payload: Any) -> ExperimentIn:
    if not isinstance(payload, dict):
        raise InvalidInputError({"(root)": "must be a JSON object"}, "Invalid experiment")
    try:
        return ExperimentIn.model_validate(payload)
    except ValidationError as error:
        errors = pydantic_errors(error.errors(include_url=False))
        raise InvalidInputError(errors, "Invalid experiment") from None


def _engine_errors(definition: ExperimentIn, engines: Registry) -> dict[str, str]:
    known = ", ".join(name for name, served in engines.served.items() if not served.ranking)
    errors = {}
    for index, variant in enumerate(definition.variants):
        served = engines.find(variant.engine)
        if served is None or served.ranking:
            errors[f"variants.{index}.engine"] = (
                f"{variant.engine!r} is not a served top-K engine (served: {known})"
            )
    return errors


def _overlap_errors(definition: ExperimentIn) -> dict[str, str]:
    """A running experiment whose panels and clients both meet this one's (empty: all)."""
    for running in Experiment.objects(status=RUNNING).only("name", "panels", "clients"):
        if _meet(definition.panels, running.panels) and _meet(definition.clients, running.clients):
            return {
                "panels": f"overlaps running experiment {running.name!r} ({running.id}) in "
                "panels and clients; stop it or narrow the scope"
            }
    return {}


def _meet(ours: list[str], theirs: list[str]) -> bool:
    return not ours or not theirs or bool(set(ours) & set(theirs))


def newest_first() -> list[Experiment]:
    return list(Experiment.objects.order_by("-created_at"))


def find(experiment_id: str) -> Experiment:
    try:
        found = Experiment.objects(id=ObjectId(experiment_id)).first()
    except (InvalidId, TypeError):
        found = None
    if found is None:
        raise UnknownExperimentError(f"No experiment {experiment_id}")
    return found


def stop(experiment: Experiment) -> Experiment:
    """Stop it (its results are kept); stopping a stopped experiment changes nothing."""
    if experiment.status != STOPPED:
        experiment.status, experiment.stopped_at = STOPPED, utcnow()
        experiment.save()
        stamps.bump(STAMP)
    return experiment


def view(experiment: Experiment, mode: str = "json") -> dict[str, Any]:
    """What clients see of `experiment` (mode "json": times as ISO text; "python": datetimes)."""
    return ExperimentView(
        id=str(experiment.id),
        name=experiment.name,
        status=experiment.status,
        variants=[variant.to_mongo().to_dict() for variant in experiment.variants],
        panels=list(experiment.panels),
        clients=list(experiment.clients),
        created_at=experiment.created_at,
        stopped_at=experiment.stopped_at,
        results=dict(experiment.results or {}),
        results_at=experiment.results_at,
    ).model_dump(mode=mode)
