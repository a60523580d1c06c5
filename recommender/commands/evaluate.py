"""`flask evaluate`: hitrate of served panels, offline HR@K / NDCG@K of trained engines, and
(`--off-policy`) off-policy estimates of every engine from logged recommendations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from recommender.services.evaluation import Hitrate, offline_metrics, panel_hitrate

if TYPE_CHECKING:
    from recommender.services.off_policy import OffPolicyReport

FAILED = 1
CONFIDENCE = "95%"


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


def off_policy_lines(report: OffPolicyReport) -> list[str]:
    from recommender.services.off_policy import ESTIMATORS

    skipped = ", ".join(
        f"{why.replace('_', ' ')}: {count}" for why, count in report.skipped.items()
    )
    lines = [
        f"Off-policy estimates (expected slate reward per request, {CONFIDENCE} intervals)",
        f"  logged recommendations used: {report.logged}  skipped: {skipped}"
        f"  ({report.seconds:.2f} s)",
    ]
    table = [["engine", "n", *ESTIMATORS, "unsupported"]]
    for name, engine in report.engines.items():
        if engine.status == "ok":
            cells = [
                f"{e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}]"
                for e in (engine.estimates[estimator] for estimator in ESTIMATORS)
            ]
            mass = "?" if engine.unsupported_mass is None else f"{engine.unsupported_mass:.3f}"
            table.append([name, str(engine.n), *cells, mass])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines += [
        f"  {name}: {engine.status} ({engine.reason})"
        for name, engine in report.engines.items()
        if engine.status != "ok"
    ]
    return lines


def print_off_policy(targets: tuple[str, ...], max_logged: int | None, as_json: bool) -> None:
    # Imported when used: every process registers the commands, and the report reads sessions,
    # which an API process never loads (tests/architecture/test_serving_imports.py).
    from recommender.services.off_policy import FAILED as OFF_POLICY_FAILED
    from recommender.services.off_policy import UnknownEngineError, off_policy_report

    try:
        report = off_policy_report(targets or None, max_logged, fresh=True)
    except UnknownEngineError as error:
        raise click.BadParameter(str(error), param_hint="--target") from None
    if as_json:
        click.echo(json.dumps(report.as_json(details=True), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(off_policy_lines(report)))
    if any(engine.status == OFF_POLICY_FAILED for engine in report.engines.values()):
        raise SystemExit(FAILED)


@click.command(
    help=(
        "Measure the engines. Hitrate: for the recommendations served (optionally only by "
        "--engine and in --panel), panel clicks / all clicks of the same visits, in %. Offline: "
        "HR@K and NDCG@K of every trained engine on held-out data of the current database "
        "(leave-last-out, sampled negatives). Prints tables, or JSON with --json. Exit code 1 "
        "when an engine's evaluation fails. --off-policy: off-policy estimates instead (see "
        "docs/engines.md)."
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
@click.option(
    "--off-policy",
    is_flag=True,
    help=(
        "Instead: per enabled top-K engine, IPS, SNIPS and DR estimates of its reward with 95% "
        "intervals, from the stored recommendations that carry propensities."
    ),
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    help="With --off-policy: only this engine (repeat for several; default: all top-K ones).",
)
@click.option(
    "--max-logged",
    type=click.IntRange(min=1),
    default=None,
    help="With --off-policy: the newest logged recommendations used (default "
    "OFF_POLICY_MAX_LOGGED).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
@with_appcontext
def evaluate(
    engine: str | None,
    panel: str | None,
    ks: tuple[int, ...],
    only: str | None,
    off_policy: bool,
    targets: tuple[str, ...],
    max_logged: int | None,
    as_json: bool,
) -> None:
    if off_policy:
        print_off_policy(targets, max_logged, as_json)
        return
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
