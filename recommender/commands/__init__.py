"""Flask CLI groups. Each module holds one thin click group that calls services."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from recommender.commands.demo import demo
    from recommender.commands.seed import seed

    commands: list = [seed, demo]
    for command in commands:
        app.cli.add_command(command)
