"""The training page: every pipeline run (newest first, a page at a time), one run's steps,
metrics and curves, and the quality of each pipeline's runs over time.

Reads go through the `start_time` and (`pipeline`, `start_time`) indexes and never load a
run's curves or step details except on that run's own page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from recommender.models.ops import PipelineMetadata

PAGE_SIZE = 50
QUALITY_RUNS = 100  # the newest runs per pipeline in the quality charts
QUALITY_METRICS = ("hr@10", "ndcg@10")
LISTED = {
    "pipeline": 1,
    "status": 1,
    "reason": 1,
    "model_version": 1,
    "start_time": 1,
    "end_time": 1,
    "steps.name": 1,
    "steps.status": 1,
    "steps.duration_s": 1,
    "metrics": 1,
}


def _runs():
    return PipelineMetadata._get_collection()  # (creates the declared indexes if missing)


@dataclass(frozen=True)
class RunList:
    runs: list[dict[str, Any]]
    pipelines: list[str]  # every pipeline that has a run
    pipeline: str | None  # the filter
    page: int  # from 1
    has_next: bool

    @property
    def step_names(self) -> list[str]:
        """The steps of the listed runs, in the order they ran."""
        return list(
            dict.fromkeys(step["name"] for run in self.runs for step in run.get("steps", []))
        )


def run_list(pipeline: str | None, page: int) -> RunList:
    """Page `page` (from 1) of the runs of `pipeline` (all when None), newest first."""
    query = {"pipeline": pipeline} if pipeline else {}
    found = list(
        _runs()
        .find(query, LISTED)
        .sort("start_time", -1)
        .skip((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    for run in found:
        run["quality"] = quality(run.get("metrics") or {})
        run["steps_by_name"] = {step["name"]: step for step in run.get("steps", [])}
    return RunList(found[:PAGE_SIZE], pipelines(), pipeline, page, has_next=len(found) > PAGE_SIZE)


def pipelines() -> list[str]:
    return sorted(_runs().distinct("pipeline"))


def run(run_id: str) -> dict[str, Any] | None:
    """One run, whole; None when there is no such run (or `run_id` is not an id)."""
    try:
        key = ObjectId(run_id)
    except (InvalidId, TypeError):
        return None
    found = _runs().find_one({"_id": key})
    if found is not None:
        found["flat_metrics"] = flatten(found.get("metrics") or {})
    return found


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as `a.b.c` -> leaf value (lists and scalars are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def quality(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """QUALITY_METRICS found in `metrics`: metric -> {where it was measured -> value}, e.g.
    {"hr@10": {"ncf.valid": 0.41, "popularity.valid": 0.30}}."""
    found: dict[str, dict[str, float]] = {}
    for path, value in flatten(metrics).items():
        where, _, metric = path.rpartition(".")
        if metric in QUALITY_METRICS and isinstance(value, int | float):
            found.setdefault(metric, {})[where or metric] = float(value)
    return found


@dataclass(frozen=True)
class QualityPoint:
    start_time: dt.datetime
    status: str
    model_version: int | None
    value: float


def quality_history(pipeline: str) -> dict[str, dict[str, list[QualityPoint]]]:
    """The quality metrics of the newest QUALITY_RUNS runs of `pipeline`, oldest first:
    metric -> where measured -> points (runs that measured none are left out)."""
    rows = (
        _runs()
        .find(
            {"pipeline": pipeline}, {"start_time": 1, "status": 1, "model_version": 1, "metrics": 1}
        )
        .sort("start_time", -1)
        .limit(QUALITY_RUNS)
    )
    history: dict[str, dict[str, list[QualityPoint]]] = {}
    for row in reversed(list(rows)):
        for metric, values in quality(row.get("metrics") or {}).items():
            for where, value in values.items():
                point = QualityPoint(
                    row["start_time"], row["status"], row.get("model_version"), value
                )
                history.setdefault(metric, {}).setdefault(where, []).append(point)
    return history
