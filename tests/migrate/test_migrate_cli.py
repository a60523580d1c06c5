"""`flask migrate` through Flask's CLI runner, on per-test migration folders (see conftest)."""

from __future__ import annotations

import hashlib

from recommender.migrate.runner import LEGACY_NAMES, LOCK_NAME
from recommender.store import get_db, leases

FIRST, SECOND, THIRD = (
    "20240101000000_first",
    "20240102000000_second",
    "20240103000000_third",
)


def records() -> dict[str, dict]:
    return {row["name"]: row for row in get_db().migration.find({}, {"_id": 0})}


def ups() -> dict[str, int]:
    return {row["_id"]: row["ups"] for row in get_db().migration_log.find()}


def test_apply_runs_pending_in_name_order_and_records_checksums(cli, write):
    second = write(SECOND, up=f'self.db.order.insert_one({{"name": "{SECOND}"}})')
    first = write(FIRST, up=f'self.db.order.insert_one({{"name": "{FIRST}"}})')

    result = cli("migrate", "apply")

    assert result.exit_code == 0, result.output
    assert [row["name"] for row in get_db().order.find()] == [FIRST, SECOND]
    stored = records()
    for path in (first, second):
        record = stored[path.stem]
        assert record["applied"] is True
        assert record["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record["applied_at"] is not None
    again = cli("migrate", "apply")
    assert again.exit_code == 0
    assert "Nothing to apply" in again.output
    assert get_db().order.count_documents({}) == 2


def test_list_records_new_files_and_shows_their_state(cli, write):
    write(FIRST)
    assert cli("migrate", "apply").exit_code == 0
    write(SECOND)

    result = cli("migrate", "list")

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith(FIRST) and "applied" in lines[0]
    assert lines[1].startswith(SECOND) and lines[1].endswith("pending")
    assert records()[SECOND]["applied"] is False


def test_rollback_undoes_the_newest_applied_migration_one_at_a_time(cli, write):
    write(FIRST)
    write(SECOND)
    assert cli("migrate", "apply").exit_code == 0

    result = cli("migrate", "rollback")
    assert result.exit_code == 0
    assert SECOND in result.output
    assert set(ups()) == {FIRST}
    assert records()[SECOND]["applied"] is False
    assert records()[SECOND]["checksum"] is None

    assert cli("migrate", "rollback").exit_code == 0
    assert ups() == {}
    nothing = cli("migrate", "rollback")
    assert nothing.exit_code == 0
    assert "Nothing to roll back" in nothing.output


def test_check_reports_an_edited_applied_file_and_apply_refuses(cli, write):
    path = write(FIRST)
    assert cli("migrate", "apply").exit_code == 0
    path.write_text(path.read_text() + "\n# edited after it was applied\n")
    write(SECOND)

    check = cli("migrate", "check")
    apply = cli("migrate", "apply")

    assert check.exit_code == 1
    assert f"edited since applied: {FIRST}" in check.output
    assert f"pending: {SECOND}" in check.output
    assert apply.exit_code == 1
    assert FIRST in apply.output
    assert SECOND not in ups()


def test_editing_a_migration_that_is_not_applied_is_fine(cli, write):
    path = write(FIRST)
    assert cli("migrate", "list").exit_code == 0  # recorded, not applied
    path.write_text(path.read_text() + "\n# still being written\n")

    result = cli("migrate", "check")

    assert result.exit_code == 0, result.output
    assert f"pending: {FIRST}" in result.output


def test_check_reports_a_record_whose_file_is_missing(cli, write):
    write(FIRST)
    second = write(SECOND)
    assert cli("migrate", "apply").exit_code == 0
    second.unlink()

    check = cli("migrate", "check")
    rollback = cli("migrate", "rollback")

    assert check.exit_code == 1
    assert f"recorded but file missing: {SECOND}" in check.output
    assert rollback.exit_code == 1
    assert set(ups()) == {FIRST, SECOND}  # nothing was rolled back


def test_check_reports_misnamed_files_but_allows_helpers(cli, write, migrations_dir):
    write(FIRST)
    (migrations_dir / "_shared.py").write_text("VALUE = 1\n")
    (migrations_dir / "fix_indexes.py").write_text("VALUE = 2\n")

    check = cli("migrate", "check")
    apply = cli("migrate", "apply")

    assert check.exit_code == 1
    assert "fix_indexes.py" in check.output
    assert "_shared.py" not in check.output
    assert apply.exit_code == 1
    assert ups() == {}


def test_records_of_the_original_services_migrations_are_not_missing(cli, write):
    legacy = sorted(LEGACY_NAMES)[0]
    get_db().migration.insert_one({"name": legacy, "applied": True})
    write(FIRST)

    check = cli("migrate", "check")
    apply = cli("migrate", "apply")
    rollback = cli("migrate", "rollback")

    assert check.exit_code == 0, check.output
    assert legacy in check.output
    assert f"{legacy}  applied" in cli("migrate", "list").output
    assert apply.exit_code == 0
    assert rollback.exit_code == 0
    assert FIRST in rollback.output
    assert records()[legacy]["applied"] is True


def test_repopulate_marks_everything_not_applied_so_apply_reruns_it(cli, write):
    write(FIRST)
    write(SECOND)
    assert cli("migrate", "apply").exit_code == 0

    refused = cli("migrate", "repopulate", input="n\n")
    assert refused.exit_code == 1
    assert all(record["applied"] for record in records().values())

    result = cli("migrate", "repopulate", "--yes")
    assert result.exit_code == 0
    assert {name: r["applied"] for name, r in records().items()} == {FIRST: False, SECOND: False}
    assert cli("migrate", "apply").exit_code == 0
    assert ups() == {FIRST: 2, SECOND: 2}


def test_a_second_runner_cannot_change_anything_while_the_lock_is_held(cli, write):
    write(FIRST)
    assert leases.acquire(LOCK_NAME, "other-runner", 60)

    results = [
        cli("migrate", c, *extra)
        for c, *extra in (("apply",), ("rollback",), ("repopulate", "--yes"))
    ]

    for result in results:
        assert result.exit_code == 1
        assert "other-runner" in result.output
    assert ups() == {}
    leases.release(LOCK_NAME, "other-runner")
    assert cli("migrate", "apply").exit_code == 0
    assert ups() == {FIRST: 1}


def test_a_failing_migration_stops_the_run_and_stays_not_applied(cli, write):
    write(FIRST)
    failing = write(SECOND, up='raise RuntimeError("index build failed")')
    write(THIRD)

    result = cli("migrate", "apply")

    assert result.exit_code == 1
    assert SECOND in result.output and "index build failed" in result.output
    assert {name: r["applied"] for name, r in records().items()} == {
        FIRST: True,
        SECOND: False,
        THIRD: False,
    }
    assert ups() == {FIRST: 1}
    assert leases.holder_of(LOCK_NAME) is None  # the lock is released after a failure
    failing.unlink()
    write(SECOND)
    assert cli("migrate", "apply").exit_code == 0
    assert ups() == {FIRST: 1, SECOND: 1, THIRD: 1}


def test_a_failing_down_leaves_the_migration_applied(cli, write):
    write(FIRST, down='raise RuntimeError("cannot undo")')
    assert cli("migrate", "apply").exit_code == 0

    result = cli("migrate", "rollback")

    assert result.exit_code == 1
    assert "cannot undo" in result.output
    assert records()[FIRST]["applied"] is True


def test_a_file_must_define_exactly_one_migration(cli, migrations_dir):
    (migrations_dir / f"{FIRST}.py").write_text("VALUE = 1\n")

    result = cli("migrate", "apply")

    assert result.exit_code == 1
    assert "exactly one BaseMigration subclass" in result.output
    assert records()[FIRST]["applied"] is False


def test_every_command_explains_itself(cli):
    for command in ("apply", "rollback", "list", "check", "repopulate"):
        result = cli("migrate", command, "--help")
        assert result.exit_code == 0
        assert len(result.output.split("\n\n")[1].split()) >= 8, command
