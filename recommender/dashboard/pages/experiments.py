"""Experiments: each experiment's variants (impressions, CTR and its interval as a chart,
orders), the decision, the sample-ratio check, and a button that stops a running one."""

from __future__ import annotations

from flask import redirect, url_for
from markupsafe import Markup

from recommender.dashboard.blueprint import Page, blueprint, render
from recommender.dashboard.charts import Estimate, interval_chart
from recommender.services.experiments import manage, results
from recommender.services.experiments.manage import UnknownExperimentError

PAGE = Page("Experiments", "experiments")


def ctr_chart(view: dict) -> Markup:
    rows = [
        Estimate(variant["name"], variant["ctr"], *variant["ctr_ci"])
        for variant in view["results"].get("variants", [])
        if variant["impressions"]
    ]
    return interval_chart(f"{view['name']}: clicks per impression, 95% interval", rows, "CTR")


@blueprint.get("/experiments")
def experiments():
    views = [manage.view(experiment, "python") for experiment in manage.newest_first()]
    charts = {view["id"]: ctr_chart(view) for view in views}
    return render("experiments.html", title="Experiments", experiments=views, charts=charts)


@blueprint.post("/experiments/<experiment_id>/stop")
def stop_experiment(experiment_id: str):
    try:
        experiment = manage.find(experiment_id)
    except UnknownExperimentError as error:
        return render("error.html", 404, title="Not found", message=str(error))
    manage.stop(results.refresh(experiment))
    return redirect(url_for("dashboard.experiments", _anchor=f"experiment-{experiment_id}"))
