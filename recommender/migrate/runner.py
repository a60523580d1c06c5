"""The migration runner: which migrations exist, which are applied, and running them.

Bookkeeping lives in the `migration` collection, one record per migration file:
`{name, applied, checksum, applied_at}` (name = file stem). As in the original, every command
but `check` first *scans*: files without a record get one with `applied: false`.

`check` compares the records with the files:
- edited: an applied migration whose file changed since (sha256 of the file differs; a record
  without a checksum, e.g. one the original service wrote, cannot be compared);
- missing: a record whose file is gone;
- unknown: a `.py` file the runner would ignore because its name is not `YYYYMMDDHHMMSS_name.py`
  (files starting with `_` are helpers and are allowed);
- pending: files not applied yet (not a problem; `apply` runs them).
Edited, missing and unknown fail the check, and `apply`/`rollback` refuse to run while it fails.

Runs that change records (apply, rollback, repopulate) hold the `migrations` lease, so two
runners (e.g. two containers starting at once) cannot apply the same migration twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import inspect
import os
import re
import socket
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import ASCENDING, UpdateMany
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from recommender.migrate.base import BaseMigration
from recommender.models.ops import Migration, utcnow
from recommender.store import get_db, leases

DEFAULT_DIR = Path(__file__).parent / "migrations"
NAME_PATTERN = re.compile(r"^\d{14}_\w+$")
LOCK_NAME = "migrations"
LOCK_TTL_S = 3600.0
DUPLICATE_KEY = 11000
# Records the original service left in `migration`: their changes concern its own schema, so
# our runner has no files for them and does not count them as missing.
LEGACY_NAMES = frozenset(
    {
        "20211126112815_remove_unused_collections",
        "20211126113629_rename_tensor_to_one_hot_tensor",
        "20220228135032_set_engine_version",
        "20220315122123_searchdata_to_elastic_services",
        "20220919203517_rename_elastic_services_to_candidates",
    }
)


class MigrationError(Exception):
    """A migration command could not do its work; the message says why."""


class MigrationLockedError(MigrationError):
    def __init__(self, holder: str | None) -> None:
        super().__init__(
            f"Another migration runner holds the lock ({holder or 'unknown holder'}); "
            "try again when it has finished"
        )
        self.holder = holder


class MigrationFailedError(MigrationError):
    def __init__(self, name: str, step: str, error: BaseException) -> None:
        super().__init__(f"Migration {name} failed in {step}(): {error!r}")
        self.name = name


@dataclass
class CheckReport:
    edited: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.edited or self.missing or self.unknown)

    def problems(self) -> list[str]:
        return (
            [f"edited since applied: {name}" for name in self.edited]
            + [f"recorded but file missing: {name}" for name in self.missing]
            + [f"not a migration file name (YYYYMMDDHHMMSS_name.py): {n}" for n in self.unknown]
        )


class CheckFailedError(MigrationError):
    def __init__(self, report: CheckReport) -> None:
        super().__init__("Migration check failed: " + "; ".join(report.problems()))
        self.report = report


@dataclass(frozen=True)
class MigrationFile:
    name: str
    path: Path

    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Record:
    name: str
    applied: bool
    checksum: str | None
    applied_at: dt.datetime | None


def load_migration(path: Path, db: Database) -> BaseMigration:
    """Import the file and build its one BaseMigration subclass."""
    spec = importlib.util.spec_from_file_location(f"_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise MigrationError(f"Cannot import migration file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseMigration) and cls.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise MigrationError(
            f"{path.name} must define exactly one BaseMigration subclass, found {len(classes)}"
        )
    return classes[0](db)


class Runner:
    """Migrations of `directory` against `db` (the app's database by default)."""

    def __init__(self, directory: Path | str = DEFAULT_DIR, db: Database | None = None) -> None:
        self.directory = Path(directory)
        self.db = db if db is not None else get_db()
        self.records_collection = self.db[Migration._get_collection_name()]
        # The unique name index (as the model declares it) makes concurrent scans safe.
        for spec in Migration._meta["index_specs"]:
            options = {key: value for key, value in spec.items() if key != "fields"}
            self.records_collection.create_index(spec["fields"], **options)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # --- what is there -------------------------------------------------------------------
    def files(self) -> dict[str, MigrationFile]:
        paths = sorted(self.directory.glob("[0-9]*.py"))
        return {p.stem: MigrationFile(p.stem, p) for p in paths if NAME_PATTERN.match(p.stem)}

    def unknown_files(self) -> list[str]:
        names = {p.name for p in self.directory.glob("*.py") if not p.name.startswith("_")}
        return sorted(n for n in names if not NAME_PATTERN.match(n.removesuffix(".py")))

    def records(self) -> dict[str, Record]:
        rows = self.records_collection.find({}, {"_id": 0}).sort("name", ASCENDING)
        return {
            row["name"]: Record(
                row["name"], bool(row.get("applied")), row.get("checksum"), row.get("applied_at")
            )
            for row in rows
        }

    def scan(self) -> None:
        """Record every file that has no record yet as not applied."""
        # UpdateMany on the unique name: mongomock rejects pymongo's UpdateOne in bulk_write.
        operations = [
            UpdateMany(
                {"name": name},
                {"$setOnInsert": {"applied": False, "checksum": None, "applied_at": None}},
                upsert=True,
            )
            for name in self.files()
        ]
        if not operations:
            return
        try:
            self.records_collection.bulk_write(operations, ordered=False)
        except BulkWriteError as error:  # a concurrent scan recorded the same file first
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    def check(self) -> CheckReport:
        files, records = self.files(), self.records()
        report = CheckReport(unknown=self.unknown_files())
        for name, record in records.items():
            if name not in files:
                (report.legacy if name in LEGACY_NAMES else report.missing).append(name)
            elif record.applied and record.checksum and record.checksum != files[name].checksum():
                report.edited.append(name)
        report.pending = [n for n in files if n not in records or not records[n].applied]
        return report

    # --- changes ---------------------------------------------------------------------------
    def locked(self) -> AbstractContextManager[None]:
        return leases.held(LOCK_NAME, self.holder, LOCK_TTL_S, busy=MigrationLockedError)

    def _checked(self) -> tuple[dict[str, MigrationFile], dict[str, Record]]:
        self.scan()
        report = self.check()
        if not report.ok:
            raise CheckFailedError(report)
        return self.files(), self.records()

    def apply(self, on_start: Callable[[str], None] | None = None) -> list[str]:
        """Run `up()` of every pending migration, oldest first; stop at the first failure."""
        applied = []
        with self.locked():
            files, records = self._checked()
            for name in (n for n, r in records.items() if not r.applied and n in files):
                leases.acquire(LOCK_NAME, self.holder, LOCK_TTL_S)  # renew for long runs
                if on_start:
                    on_start(name)
                checksum = files[name].checksum()
                try:
                    load_migration(files[name].path, self.db).up()
                except Exception as error:  # recorded as not applied; later ones do not run
                    raise MigrationFailedError(name, "up", error) from error
                self._set(name, applied=True, checksum=checksum, applied_at=utcnow())
                applied.append(name)
        return applied

    def rollback(self) -> str | None:
        """Run `down()` of the newest applied migration; None when nothing is applied."""
        with self.locked():
            files, records = self._checked()
            names = [n for n, r in records.items() if r.applied and n in files]
            if not names:
                return None
            name = names[-1]
            try:
                load_migration(files[name].path, self.db).down()
            except Exception as error:  # stays applied
                raise MigrationFailedError(name, "down", error) from error
            self._set(name, applied=False, checksum=None, applied_at=None)
            return name

    def status(self) -> list[Record]:
        """Scan, then every record by name."""
        self.scan()
        return list(self.records().values())

    def repopulate(self) -> int:
        """Forget every record and rescan: everything becomes not applied."""
        with self.locked():
            self.records_collection.delete_many({})
            self.scan()
            return self.records_collection.count_documents({})

    def _set(self, name: str, **values) -> None:
        self.records_collection.update_one({"name": name}, {"$set": values})
