"""Migrations of the stored data: `flask migrate apply | rollback | list | check | repopulate`."""

from recommender.migrate.base import BaseMigration
from recommender.migrate.runner import (
    DEFAULT_DIR,
    CheckFailedError,
    CheckReport,
    MigrationError,
    MigrationFailedError,
    MigrationLockedError,
    Runner,
)

__all__ = [
    "DEFAULT_DIR",
    "BaseMigration",
    "CheckFailedError",
    "CheckReport",
    "MigrationError",
    "MigrationFailedError",
    "MigrationLockedError",
    "Runner",
]
