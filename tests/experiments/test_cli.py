"""`flask experiments create | list | show | stop`."""

from __future__ import annotations

import json

from tests.api.helpers import load


def test_create_list_show_and_stop(app):
    load()
    cli = app.test_cli_runner()
    created = cli.invoke(
        args=[
            "experiments", "create", "--name", "ncf-vs-random",
            "--variant", "control=Random:0.5", "--variant", "treatment=NCF:0.5",
            "--panel", "v1", "--json",
        ]
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    experiment = json.loads(created.output)
    assert experiment["status"] == "running" and experiment["panels"] == ["v1"]

    listed = cli.invoke(args=["experiments", "list"])
    assert experiment["id"] in listed.output and "ncf-vs-random" in listed.output

    shown = cli.invoke(args=["experiments", "show", experiment["id"]])
    assert shown.exit_code == 0
    assert "control" in shown.output and "treatment vs control" in shown.output

    stopped = cli.invoke(args=["experiments", "stop", experiment["id"], "--json"])
    assert json.loads(stopped.output)["status"] == "stopped"


def test_bad_definitions_and_unknown_ids_fail_with_the_reason(app):
    cli = app.test_cli_runner()
    bad = cli.invoke(
        args=["experiments", "create", "--name", "x", "--variant", "a=Nope:0.5",
              "--variant", "b=Random:0.5"]
    )  # fmt: skip
    assert bad.exit_code == 1 and "variants.0.engine" in bad.output
    malformed = cli.invoke(args=["experiments", "create", "--name", "x", "--variant", "a=b"])
    assert malformed.exit_code == 2 and "NAME=ENGINE:SHARE" in malformed.output
    unknown = cli.invoke(args=["experiments", "show", "6b128f9e1e479f0647433cd6"])
    assert unknown.exit_code == 2 and "No experiment" in unknown.output
