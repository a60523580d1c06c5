"""`flask evaluate`: hitrate of served panels, and offline HR@K / NDCG@K of trained engines."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from recommender.services.evaluation import Hitrate, offline_metrics, panel_hitrate

FAILED = 1


def hitrate_lines(result: Hitrate, engine: str | None, panel: str | None) -> list[str]:
    selection = f"engine={engine or 'any'}, panel={panel or 'any'}"
    rate = "n/a (no clicks)" if result.hitrate is None else f"{result.hitrate:.2f}%"
    return [
        f"Hitrate of served panels ({selection})",
        f"  recommendations: {result.recommendations}  visits: {result.visits}",
        f"  panel clicks: {result.panel_clicks}  other clicks: {result.other_clicks}",
        f"  hitrate: {rate}",
    ]


def offline_lines(results: dict[str, dict], ks: tuple[int, ...]) -> list[str]:
    if not results:
        return ["Offline metrics: no engine has an offline evaluator registered."]
    columns = ["users"] + [f"{m}@{k}" for k in ks for m in ("hr", "ndcg")]
    table = [["engine", *columns]]
    for name, result in results.items():
        if result["status"] == "ok":
            cells = [result.get(column) for column in columns]
            table.append([name, *("-" if c is None else f"{c:.4g}" for c in cells)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["Offline metrics (held-out data)"]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table
    ]
    lines += [
        f"  {name}: {result['status']} ({result['reason']})"
        for name, result in results.items()
        if result["status"] != "ok"
    ]
    return lines


@click.command(
    help=(
        "Measure the engines. Hitrate: for the recommendations served (optionally only by "
        "--engine and in --panel), panel clicks / all clicks of the same visits, in %. Offline: "
        "HR@K and NDCG@K of every trained engine on held-out data of the current database "
        "(leave-last-out, sampled negatives). Prints tables, or JSON with --json. Exit code 1 "
        "when an engine's evaluation fails."
    )
)
@click.option("--engine", default=None, help="Only recommendations served by this engine (NCF).")
@click.option("--panel", default=None, help="Only recommendations shown in this panel (v1).")
@click.option(
    "-k",
    "ks",
    type=click.IntRange(min=1),
    multiple=True,
    default=(3, 10),
    show_default=True,
    help="Cut-off K of the offline metrics; repeat for several.",
)
@click.option(
    "--only",
    type=click.Choice(["hitrate", "offline"]),
    default=None,
    help="Compute only one of the two parts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
@with_appcontext
def evaluate(
    engine: str | None, panel: str | None, ks: tuple[int, ...], only: str | None, as_json: bool
) -> None:
    output: dict = {}
    if only != "offline":
        output["hitrate"] = panel_hitrate(engine, panel)
    if only != "hitrate":
        output["offline"] = offline_metrics(ks)
    if as_json:
        if "hitrate" in output:
            output["hitrate"] = {"engine": engine, "panel": panel, **output["hitrate"].as_dict()}
        click.echo(json.dumps(output, indent=2, sort_keys=True))
    else:
        lines = hitrate_lines(output["hitrate"], engine, panel) if "hitrate" in output else []
        if "offline" in output:
            lines += offline_lines(output["offline"], ks)
        click.echo("\n".join(lines))
    if any(r["status"] == "failed" for r in output.get("offline", {}).values()):
        raise SystemExit(FAILED)
