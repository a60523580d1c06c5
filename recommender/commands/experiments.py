"""`flask experiments`: create, list, show and stop online experiments."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from recommender.errors import InvalidInputError

FAILED, NOT_FOUND = 1, 2


def variant_option(value: str) -> dict:
    """NAME=ENGINE:SHARE, e.g. control=NCF:0.5."""
    name, _, rest = value.partition("=")
    engine, _, share = rest.rpartition(":")
    try:
        return {"name": name, "engine": engine, "share": float(share)}
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not NAME=ENGINE:SHARE (e.g. control=NCF:0.5)"
        ) from None


def found(experiment_id: str):
    from recommender.services.experiments.manage import UnknownExperimentError, find

    try:
        return find(experiment_id)
    except UnknownExperimentError as error:
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(NOT_FOUND) from None


def summary(view: dict) -> list[str]:
    scope = (
        f"panels {','.join(view['panels']) or 'all'}, clients {','.join(view['clients']) or 'all'}"
    )
    lines = [f"{view['id']}  {view['name']}  {view['status']}  ({scope})"]
    for variant in view["results"].get("variants", []):
        low, high = variant["ctr_ci"]
        lines.append(
            f"  {variant['name']:<12} {variant['engine']:<14}"
            f" impressions {variant['impressions']:>8}  clicks {variant['clicks']:>7}"
            f"  ctr {variant['ctr']:.4f} [{low:.4f}, {high:.4f}]  orders {variant['orders']:>6}"
        )
    for comparison in view["results"].get("comparison", []):
        lift = comparison["lift"]
        lift_text = "n/a" if lift is None else f"{lift:+.1%}"
        lines.append(
            f"  {comparison['variant']} vs {comparison['against']}: lift {lift_text}, "
            f"{comparison['decision']} (always-valid p {comparison['p_value']:.3g})"
        )
    ratio = view["results"].get("sample_ratio")
    if ratio and ratio["mismatch"]:
        lines.append(f"  sample ratio mismatch: p {ratio['p_value']:.3g}: check the assignment")
    return lines


def echo(view: dict | list, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view, indent=2, sort_keys=True))
    else:
        for one in view if isinstance(view, list) else [view]:
            click.echo("\n".join(summary(one)))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


@click.group(help="Online experiments: split traffic between engines and read the results.")
def experiments() -> None:
    pass


@experiments.command(
    help=(
        "Start an experiment. The first --variant is the control; shares sum to 1. Requests in "
        "scope (--panel, --client; none: all) go to a variant by a stable hash of the visitor."
    )
)
@click.option("--name", required=True)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    required=True,
    callback=lambda _c, _p, v: [variant_option(x) for x in v],
    help="NAME=ENGINE:SHARE, e.g. control=NCF:0.5; repeat for each variant.",
)
@click.option("--panel", "panels", multiple=True, type=click.Choice(["v1", "v2"]))
@click.option("--client", "clients", multiple=True)
@json_option
@with_appcontext
def create(name: str, variants: list, panels: tuple, clients: tuple, as_json: bool) -> None:
    from recommender.services.experiments import manage
    from recommender.services.runtime import runtime

    definition = {"name": name, "variants": variants, "panels": panels, "clients": clients}
    try:
        experiment = manage.create(definition, runtime().engines)
    except InvalidInputError as error:
        for field, problem in error.errors.items():
            click.echo(f"Error: {field}: {problem}", err=True)
        raise SystemExit(FAILED) from None
    echo(manage.view(experiment), as_json)


@experiments.command("list", help="Every experiment, newest first, with its last results.")
@json_option
@with_appcontext
def list_experiments(as_json: bool) -> None:
    from recommender.services.experiments import manage

    echo([manage.view(e) for e in manage.newest_first()], as_json)


@experiments.command(help="One experiment, its results updated first.")
@click.argument("experiment_id")
@json_option
@with_appcontext
def show(experiment_id: str, as_json: bool) -> None:
    from recommender.services.experiments import manage, results

    echo(manage.view(results.refresh(found(experiment_id))), as_json)


@experiments.command(help="Stop an experiment (after a last update of its results).")
@click.argument("experiment_id")
@json_option
@with_appcontext
def stop(experiment_id: str, as_json: bool) -> None:
    from recommender.services.experiments import manage, results

    echo(manage.view(manage.stop(results.refresh(found(experiment_id)))), as_json)
