"""The training page: runs newest first, a page at a time, filtered by pipeline; their step
durations and quality; a run's own page with its curves and metrics."""

from __future__ import annotations

import datetime as dt
import re

from recommender.models.ops import PipelineMetadata, StepMetadata
from recommender.services.dashboard.training import PAGE_SIZE, flatten, quality

START = dt.datetime(2026, 11, 2, 8, 0)
STEPS = ("extract", "train", "evaluate")


def stored_run(pipeline: str, hours: int, **fields) -> PipelineMetadata:
    """A run as a pipeline records it, `hours` after START."""
    steps = [
        StepMetadata(name=name, status="completed", duration_s=0.5 * (i + 1), details={"rows": 3})
        for i, name in enumerate(STEPS)
    ]
    return PipelineMetadata(
        pipeline=pipeline,
        status=fields.pop("status", "promoted"),
        seed=1,
        start_time=START + dt.timedelta(hours=hours),
        end_time=START + dt.timedelta(hours=hours, minutes=1),
        steps=steps,
        **fields,
    ).save()


def ncf_metrics(hr: float, ndcg: float) -> dict:
    return {
        "ncf": {"valid": {"hr@10": hr, "ndcg@10": ndcg, "hr@3": 0.1}},
        "popularity": {"valid": {"hr@10": 0.3, "ndcg@10": 0.2}},
        "epochs": 4,
    }


def page(client, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_data(as_text=True)


def run_links(shown: str) -> list[str]:
    return re.findall(r'href="/dashboard/training/([0-9a-f]{24})"', shown)


def test_no_run_yet_says_how_runs_come(client):
    assert "No training run yet. Runs appear here when POST /update trains" in page(
        client, "/dashboard/training"
    )


def test_runs_are_listed_newest_first_with_step_durations_and_quality(client):
    old = stored_run("NCF", 0, model_version=1, metrics=ncf_metrics(0.5, 0.3))
    new = stored_run("NCF", 2, status="rejected", reason="worse than <Popularity>")
    other = stored_run("RL", 1, status="failed", reason="boom")
    shown = page(client, "/dashboard/training")
    assert run_links(shown) == [str(new.id), str(other.id), str(old.id)]
    assert "worse than &lt;Popularity&gt;" in shown
    assert ['<th scope="col">extract</th>' in shown, "1.50 s" in shown] == [True, True]
    assert "ncf.valid 0.5</span>" in shown and "popularity.valid 0.3</span>" in shown

    only_rl = page(client, "/dashboard/training?pipeline=RL")
    assert run_links(only_rl) == [str(other.id)]
    assert "<option selected>RL</option>" in only_rl


def test_runs_come_a_page_at_a_time(client):
    runs = [stored_run("AE", hours) for hours in range(PAGE_SIZE + 1)]
    first = page(client, "/dashboard/training")
    assert run_links(first) == [str(run.id) for run in reversed(runs[1:])]
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = page(client, "/dashboard/training?page=2")
    assert run_links(second) == [str(runs[0].id)]
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert "No runs on this page." in page(client, "/dashboard/training?page=3")
    for bad in ("0", "x", "-1"):
        answer = client.get(f"/dashboard/training?page={bad}")
        assert answer.status_code == 400
        assert "page must be a whole number from 1" in answer.get_data(as_text=True)


def test_quality_is_charted_per_pipeline_over_its_runs(client):
    for hours, (hr, ndcg) in enumerate([(0.5, 0.3), (0.6, 0.35), (0.55, 0.32)]):
        stored_run("NCF", hours, model_version=hours + 1, metrics=ncf_metrics(hr, ndcg))
    stored_run("NCF", 5, status="failed")  # measured nothing: not a point
    shown = page(client, "/dashboard/training")
    charts = re.findall(r'<figure class="chart">.*?</figure>', shown, re.S)
    assert len(charts) == 2  # HR@10 and NDCG@10
    hr_chart = next(chart for chart in charts if "NCF: HR@10 per run" in chart)
    # A line per place measured, a point per run.
    assert hr_chart.count("<polyline") == 2 and hr_chart.count('<circle class="point"') == 6
    assert "ncf.valid: 11-02 09:00, 0.6 (v2, promoted)" in hr_chart


def test_a_run_page_shows_steps_curves_and_metrics(client):
    run = stored_run(
        "NCF",
        0,
        model_version=3,
        metrics=ncf_metrics(0.5, 0.3),
        curves={
            "loss/train": [[1, 0.7], [2, 0.5], [3, 0.4]],
            "validation/hr@10": [[1, 0.4], [2, 0.5], [3, 0.5]],
            "validation/ndcg@10": [[1, 0.2], [2, 0.3], [3, 0.3]],
        },
    )
    shown = page(client, f"/dashboard/training/{run.id}")
    charts = re.findall(r'<figure class="chart">.*?</figure>', shown, re.S)
    assert len(charts) == 2  # "loss" and "validation", as the report's PNG groups them
    assert charts[1].count("<polyline") == 2 and charts[1].count('<circle class="point"') == 6
    assert '<th scope="row">ncf.valid.hr@10</th><td class="num">0.5</td>' in shown
    assert '<th scope="row">epochs</th><td class="num">4</td>' in shown
    assert '"rows": 3' in shown  # a step's details


def test_a_run_without_curves_or_metrics_says_so(client):
    run = stored_run("Popularity", 0, status="failed", reason="no data")
    shown = page(client, f"/dashboard/training/{run.id}")
    assert "This run recorded no curves" in shown
    assert "No metrics: the run ended before its evaluation." in shown


def test_an_unknown_run_is_a_404_page(client):
    for run_id in ("0123456789abcdef01234567", "not-an-id"):
        answer = client.get(f"/dashboard/training/{run_id}")
        assert answer.status_code == 404
        assert f"No training run {run_id}." in answer.get_data(as_text=True)


def test_quality_metrics_are_found_wherever_a_pipeline_nests_them():
    metrics = {"model": {"gate": {"ndcg@10": 0.4}}, "hr@10": 0.2, "loss": 1.0, "hr@3": 0.5}
    assert quality(metrics) == {"ndcg@10": {"model.gate": 0.4}, "hr@10": {"hr@10": 0.2}}
    assert flatten({"a": {"b": [1, 2]}, "c": None}) == {"a.b": [1, 2], "c": None}
