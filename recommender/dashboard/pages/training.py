"""Training: every pipeline run (filterable by pipeline, a page at a time), the quality of each
pipeline's runs over time, and one run's steps, metrics and curves."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from flask import abort, request
from markupsafe import Markup

from recommender.dashboard.blueprint import Page, blueprint, render
from recommender.dashboard.charts import Series, line_chart
from recommender.services.dashboard import training as runs


def clock(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%m-%d %H:%M")


def quality_charts(pipeline: str) -> list[Markup]:
    """One chart per quality metric of `pipeline`: a line per place it was measured."""
    charts = []
    for metric, places in runs.quality_history(pipeline).items():
        series = [
            Series(
                where,
                [(p.start_time.replace(tzinfo=dt.UTC).timestamp(), p.value) for p in points],
                [
                    f"v{p.model_version}, {p.status}" if p.model_version else p.status
                    for p in points
                ],
            )
            for where, points in places.items()
        ]
        title = f"{pipeline}: {metric.upper()} per run"
        charts.append(line_chart(title, series, "run started (UTC)", metric, clock, times=True))
    return charts


def curve_charts(pipeline: str, curves: dict[str, list]) -> list[Markup]:
    """The training report's curves, one chart per tag group ("loss/train" -> "loss")."""
    groups: dict[str, list[Series]] = defaultdict(list)
    for tag in sorted(curves):
        group, _, name = tag.partition("/")
        points = [(float(epoch), float(value)) for epoch, value in curves[tag]]
        groups[group].append(Series(name or group, points))
    return [
        line_chart(f"{pipeline}: {group}", series, "epoch", group)
        for group, series in groups.items()
    ]


PAGE = Page("Training", "training")


@blueprint.get("/training")
def training():
    pipeline = request.args.get("pipeline") or None
    number = request.args.get("page", "1")
    if not number.isdigit() or int(number) < 1:
        abort(400, "page must be a whole number from 1")
    listed = runs.run_list(pipeline, int(number))
    shown = [pipeline] if pipeline else listed.pipelines
    charts = [chart for name in shown for chart in quality_charts(name)]
    return render(
        "training.html",
        title="Training",
        listed=listed,
        charts=charts,
        metrics=runs.QUALITY_METRICS,
    )


@blueprint.get("/training/<run_id>")
def run(run_id: str):
    found = runs.run(run_id)
    if found is None:
        abort(404, f"No training run {run_id}.")
    return render(
        "run.html",
        title=f"{found['pipeline']} run",
        run=found,
        charts=curve_charts(found["pipeline"], found.get("curves") or {}),
    )
