"""The faster mongomock walk returns exactly what mongomock's own does, and is the one in use."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict

import mongomock
import numpy as np
from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st
from mongomock import filtering

from recommender.store import embedded, get_db
from recommender.store.embedded import patch_datetime_awareness_in_document as fast

original = embedded._original

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.builds(ObjectId),
    st.builds(uuid.uuid4),
    st.datetimes(timezones=st.none() | st.timezones()),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(st.text(max_size=4), children, max_size=5),
        st.dictionaries(st.text(max_size=4), children, max_size=5).map(OrderedDict),
    ),
    max_leaves=30,
)


def same(a, b) -> bool:
    """Equal values of the same types all the way down (== alone calls 1 == True == 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@given(documents)
def test_the_fast_walk_returns_what_mongomocks_own_returns(document):
    assert same(fast(document), original(document))


def test_flat_lists_are_copied_not_shared():
    candidates = list(range(1000))
    stored = fast({"candidates": candidates})["candidates"]
    assert stored == candidates and stored is not candidates


def test_datetimes_inside_lists_are_still_rounded_to_milliseconds():
    aware = dt.datetime(2024, 2, 21, 15, 19, 43, 512_345, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert fast([1, aware]) == [1, dt.datetime(2024, 2, 21, 14, 19, 43, 512_000)]


def test_a_mongomock_collection_uses_it_once_installed(app):
    # The app fixture connects mongoengine to mongomock, which installs the walk.
    assert mongomock.helpers.patch_datetime_awareness_in_document is fast
    collection = mongomock.MongoClient().db.things
    when = dt.datetime(2024, 1, 1, 0, 0, 0, 999_999)
    collection.insert_one({"_id": 1, "ids": list(range(5)), "at": [when]})
    assert collection.find_one({"_id": 1}) == {
        "_id": 1,
        "ids": [0, 1, 2, 3, 4],
        "at": [dt.datetime(2024, 1, 1, 0, 0, 0, 999_000)],
    }


@given(
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=40),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=40),
)
def test_interned_id_lists_share_one_int_object_per_id(first, second):
    interner = embedded.IdInterner()
    # Large values: Python shares the objects of small ints (up to 256) anyway.
    first = [v + 10**6 if v < 2**62 else v for v in first]
    second = [v + 10**6 if v < 2**62 else v for v in second]
    a = interner.ints(np.asarray(first, dtype=np.int64))
    b = interner.ints(np.asarray(second + first, dtype=np.int64))
    assert a == first and b == second + first
    assert all(type(value) is int for value in a + b)
    assert all(x is y for x, y in zip(a, b[len(second) :], strict=True))


in_values = st.one_of(
    st.none(), st.integers(-5, 5), st.text(max_size=2), st.lists(st.integers(-5, 5), max_size=3)
)


@given(in_values, st.lists(st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=2))))
def test_the_in_operator_answers_as_mongomocks_own(doc_val, search):
    assert embedded.in_operator(doc_val, search) == embedded._original_in(doc_val, search)
    missing = filtering.NOTHING
    assert embedded.in_operator(missing, search) == embedded._original_in(missing, search)


def test_the_in_operator_is_the_one_in_use(app):
    collection = get_db()["things"]
    collection.insert_many([{"_id": i, "tag": i % 3} for i in range(9)])
    assert filtering._filterer_inst._operator_map["$in"] is embedded.in_operator
    found = collection.find({"tag": {"$in": [0, 2]}, "_id": {"$nin": [0, 8]}})
    assert sorted(doc["_id"] for doc in found) == [2, 3, 5, 6]


@given(
    skip=st.integers(0, 12),
    limit=st.integers(-12, 12),
    sort=st.sampled_from([None, 1, -1]),
)
def test_the_cursor_returns_what_mongomocks_own_returns(skip, limit, sort):
    collection = mongomock.MongoClient().db.things
    collection.insert_many([{"n": n % 4, "i": n} for n in range(10)])
    original_next = embedded._original_cursor_next

    def read(next_document) -> list:
        cursor = collection.find({"n": {"$lt": 3}}, {"_id": 0}).skip(skip).limit(limit)
        if sort:
            cursor = cursor.sort("i", sort)
        found = []
        while True:
            try:
                found.append(next_document(cursor))
            except StopIteration:
                return found

    assert read(embedded.cursor_next) == read(original_next)


def test_the_cursor_is_the_one_in_use(app):
    assert mongomock.collection.Cursor.__next__ is embedded.cursor_next
    get_db().things.insert_many([{"i": i} for i in range(5)])
    assert [d["i"] for d in get_db().things.find().sort("i", -1).skip(1).limit(3)] == [3, 2, 1]
