"""The serving catalogue's lookups agree with plain Python set logic on any data."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from recommender.catalogue import Catalogue, _facet
from recommender.id_index import DENSE_IDS_BELOW, IdIndex

attribute_lists = st.lists(st.lists(st.integers(-3, 12), max_size=4), max_size=8)


@given(attribute_lists, st.lists(st.integers(-5, 15), max_size=6))
def test_facet_matches_the_services_carrying_any_wanted_id(per_service, wanted):
    facet = _facet(per_service, len(per_service))
    hit = facet.matches(np.asarray(wanted, dtype=np.int64))
    expected = [bool(set(values) & set(wanted)) for values in per_service]
    assert hit.tolist() == expected


def catalogue(ids: list[int], recommendable: list[bool]) -> Catalogue:
    ids_array = np.asarray(ids, dtype=np.int64)
    flags = np.asarray(recommendable, dtype=bool)
    return Catalogue(0, ids_array, flags, ids_array[flags], {}, {}, {}, IdIndex(ids_array))


services = st.lists(st.integers(0, 40), unique=True, max_size=12).map(sorted)
asked = st.lists(st.integers(-2, 45) | st.just(DENSE_IDS_BELOW + 7), max_size=15)


@given(services, st.data(), asked, asked, st.booleans())
def test_rows_and_eligibility_agree_with_a_dict_lookup(ids, data, candidates, exclude, dense):
    flags = data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    if not dense:  # ids past the dense table's reach: looked up by binary search
        ids, candidates, exclude = (
            [v + DENSE_IDS_BELOW for v in values] for values in (ids, candidates, exclude)
        )
    current = catalogue(ids, flags)
    wanted = np.asarray(candidates, dtype=np.int64)
    rows, found = current.rows(wanted)
    row_of = {service: row for row, service in enumerate(ids)}
    assert found.tolist() == [c in row_of for c in candidates]
    assert rows[found].tolist() == [row_of[c] for c in candidates if c in row_of]
    excluded = np.asarray(exclude, dtype=np.int64)
    eligible = current.eligible(wanted, excluded)
    # The rows looked up once and handed in give the same answer, and are left as they were.
    looked_up = current.rows(wanted)
    assert current.eligible(wanted, excluded, looked_up).tolist() == eligible.tolist()
    assert looked_up[1].tolist() == found.tolist()
    ok = {s for s, flag in zip(ids, flags, strict=True) if flag} - set(exclude)
    if candidates:  # in the client's order, first occurrences
        assert eligible.tolist() == list(dict.fromkeys(c for c in candidates if c in ok))
    else:  # every recommendable service
        assert eligible.tolist() == sorted(ok)
