"""Flask CLI groups. Each module holds one thin click group that calls services."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from recommender.commands.db import db
    from recommender.commands.demo import demo
    from recommender.commands.evaluate import evaluate
    from recommender.commands.experiments import experiments
    from recommender.commands.migrate import migrate
    from recommender.commands.seed import seed
    from recommender.commands.subscribe import subscribe
    from recommender.commands.train import train

    commands: list = [seed, demo, subscribe]
    commands += [migrate, db, train, evaluate, experiments]
    for command in commands:
        app.cli.add_command(command)
