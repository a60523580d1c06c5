"""One read of the store per training chain (`recommender.store.snapshot`): inside a snapshot a
reader reads once and its result cannot be written into; outside one it reads afresh; the
`/update` chain's stages share one snapshot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recommender.engines.base.interactions import read_interactions
from recommender.models.marketplace import Service, User
from recommender.store import get_db
from recommender.store.snapshot import read_once, snapshot
from tests.app_helpers import use_stages


def add_user(user_id: int, accessed: list[int]) -> None:
    get_db()[User._get_collection_name()].insert_one(
        {"_id": user_id, "accessed_services": accessed}
    )


@pytest.fixture
def store(app):
    with app.app_context():
        services = get_db()[Service._get_collection_name()]
        services.insert_many([{"_id": i, "status": "published"} for i in (1, 2, 3)])
        add_user(10, [1, 2])
        yield


def test_outside_a_snapshot_every_read_sees_the_store_as_it_is(store):
    first = read_interactions()
    add_user(11, [2, 3])
    second = read_interactions()
    assert len(first.users) == 1 and len(second.users) == 2


def test_inside_a_snapshot_the_first_read_is_kept_until_it_ends(store):
    with snapshot():
        first = read_interactions()
        add_user(11, [2, 3])
        assert read_interactions() is first
        assert len(read_interactions().users) == 1
        with snapshot():  # a nested block shares the outer one's reads
            assert read_interactions() is first
    assert len(read_interactions().users) == 2


@dataclass(frozen=True)
class Column:
    values: np.ndarray


@dataclass(frozen=True)
class Table:
    ids: np.ndarray
    columns: dict[str, Column]
    parts: list[np.ndarray]


@read_once
def read_table() -> Table:
    return Table(np.arange(3), {"tags": Column(np.ones(3))}, [np.zeros(2)])


def test_a_kept_reads_arrays_are_read_only_at_any_depth(store):
    with snapshot():
        data = read_interactions()
        table = read_table()
    kept = (data.user_rows, data.recommendable, data.services.ids, table.ids)
    for array in (*kept, table.columns["tags"].values, table.parts[0]):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[0]
    assert read_interactions().user_rows.flags.writeable  # a fresh read is the caller's own
    assert read_table().columns["tags"].values.flags.writeable


def test_readers_and_arguments_are_kept_apart_and_unhashable_arguments_read_afresh(store):
    calls = []

    @read_once
    def reader(ids):
        calls.append(ids)
        return np.array(ids)

    with snapshot():
        assert reader(1).tolist() == 1 and reader(1).tolist() == 1
        assert reader(2).tolist() == 2
        assert reader([3]).tolist() == [3] and reader([3]).tolist() == [3]
        assert read_table() is read_table() and read_table().ids.tolist() == [0, 1, 2]
    assert calls == [1, 2, [3], [3]]


def test_the_training_chain_reads_the_interactions_once_for_all_its_stages(app, store, monkeypatch):
    from recommender.engines.base import interactions
    from recommender.services.update import train_chain

    built = []
    build = interactions.build_interactions
    monkeypatch.setattr(interactions, "build_interactions", lambda *a: built.append(1) or build(*a))
    seen = []

    def stage(name: str):
        def train(env, seed, progress):
            from recommender.engines.base.outcome import PipelineOutcome

            seen.append(read_interactions())
            add_user(100 + len(seen), [3])  # arrives while the chain runs
            return PipelineOutcome(pipeline=name, status="promoted")

        return train

    with app.app_context():
        use_stages(monkeypatch, {name: stage(name) for name in ("a", "b", "c")})
        outcomes = train_chain(None, seed=0, progress=False)
        assert [o.status for o in outcomes] == ["promoted"] * 3
        assert len(built) == 1
        assert seen[0] is seen[1] is seen[2] and len(seen[0].users) == 1
        assert len(read_interactions().users) == 4  # after the chain: read afresh
