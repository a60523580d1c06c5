"""Migration folders written per test: each migration logs its up()/down() in `migration_log`."""

from __future__ import annotations

from pathlib import Path

import pytest

TEMPLATE = """from recommender.migrate import BaseMigration


class {cls}(BaseMigration):
    def up(self):
        {up}

    def down(self):
        {down}
"""
LOG_UP = (
    'self.db.migration_log.update_one({{"_id": "{name}"}}, {{"$inc": {{"ups": 1}}}}, upsert=True)'
)
LOG_DOWN = 'self.db.migration_log.delete_one({{"_id": "{name}"}})'


def write_migration(directory: Path, name: str, up: str | None = None, down: str | None = None):
    """`directory/name.py` with one migration; by default up() and down() log themselves."""
    path = directory / f"{name}.py"
    path.write_text(
        TEMPLATE.format(
            cls="Step" + name.split("_", 1)[0],
            up=up or LOG_UP.format(name=name),
            down=down or LOG_DOWN.format(name=name),
        )
    )
    return path


@pytest.fixture
def migrations_dir(app, tmp_path: Path) -> Path:
    app.config["MIGRATIONS_DIR"] = str(tmp_path)
    return tmp_path


@pytest.fixture
def write(migrations_dir: Path):
    """write(name, up=None, down=None) -> path of a new migration in the test's folder."""
    return lambda name, up=None, down=None: write_migration(migrations_dir, name, up, down)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args, **kwargs: runner.invoke(args=list(args), **kwargs)
