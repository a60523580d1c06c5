"""Popularity: counts at training time, served from memory, weighted toward the search."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender.engines.base.engine import RecommendationContext, pick, top
from recommender.engines.popularity import MODEL_NAME
from recommender.engines.popularity.pipeline import train
from recommender.model_store import versions as model_store
from recommender.models.ops import ModelVersion, PipelineMetadata
from tests.api.helpers import load, panel_click
from tests.app_helpers import engine, env
from tests.marketplace_dump import marketplace_dump, service


def user(user_id: int, accessed: list[int]) -> dict:
    return {
        "id": user_id,
        "aai_uid": f"u{user_id}@egi.eu",
        "scientific_domains": [],
        "categories": [],
        "accessed_services": accessed,
    }


@pytest.fixture
def catalogue(app):
    """Services 1..6 (6 is a draft); service 1 is ordered 3 times, 2 twice, 3 once."""
    dump = marketplace_dump()
    dump["services"] = [
        service(1, categories=[10], scientific_domains=[20]),
        service(2, categories=[10], scientific_domains=[20]),
        service(3, categories=[11], scientific_domains=[21]),
        service(4, categories=[12], scientific_domains=[20]),
        service(5, "unverified", categories=[12], scientific_domains=[20]),
        service(6, "draft", categories=[11], scientific_domains=[20]),
    ]
    dump["users"] = [user(1, [1, 2, 3]), user(2, [1, 2]), user(3, [1, 6])]
    dump["projects"] = []
    return load(dump)


def ask(candidates, search_data=None, k: int = 3, ranking: bool = False):
    context = RecommendationContext(
        candidates=np.asarray(candidates, dtype=np.int64),
        search_data=search_data or {},
        unique_id="x",
        timestamp=dt.datetime(2024, 1, 1),
    )
    return engine("Popularity").answer(context, k, ranking)


def test_training_counts_orders_and_panel_clicks_of_both_spellings(catalogue):
    panel_click(4)
    panel_click(4, root_type="recommendation_panel")
    panel_click(5, root_type="regular_services_list")  # not a panel: not counted
    outcome = train(env())
    assert outcome.status == "promoted"
    assert outcome.metrics == {"orders": 7, "panel_clicks": 2, "services": 5}
    stored = model_store.load(MODEL_NAME)
    counts = dict(
        zip(
            stored.tensors["service_ids"].tolist(),
            zip(stored.tensors["orders"].tolist(), stored.tensors["clicks"].tolist(), strict=True),
            strict=True,
        )
    )
    assert counts == {1: (3, 0), 2: (2, 0), 3: (1, 0), 4: (0, 2), 6: (1, 0)}
    # Recorded like every pipeline's run: each step, its details, the version it promoted.
    run = PipelineMetadata.objects(pipeline="Popularity").get()
    assert (run.status, run.model_version) == ("promoted", outcome.model_version)
    assert {step.status for step in run.steps} == {"completed"}
    assert run.steps[1].details == {"orders": 7, "panel_clicks": 2}


def test_nothing_to_count_is_rejected_and_not_served(app):
    load({**marketplace_dump(), "users": [], "projects": []})
    outcome = train(env())
    assert (outcome.status, outcome.reason) == ("rejected", "no orders or panel clicks to count")
    assert model_store.live_version(MODEL_NAME) is None
    assert ModelVersion.objects(name=MODEL_NAME).count() == 0  # rejected before writing one
    assert engine("Popularity").is_ready() == (False, "Missing model in db")


def test_most_ordered_first_within_the_candidates(catalogue):
    train(env())
    assert ask([1, 2, 3, 4, 5]).services == [1, 2, 3]
    assert ask([3, 4, 2]).services == [2, 3, 4]
    result = ask([1, 2, 3, 4, 5], ranking=True)
    assert result.services == [1, 2, 3, 4, 5]  # 4 and 5 never ordered: tie broken by id
    assert result.scores == sorted(result.scores, reverse=True)
    assert all(0 < score <= 1 for score in result.scores)


def test_services_matching_the_search_context_are_boosted(catalogue):
    train(env())
    assert ask([1, 2, 3], k=1).services == [1]
    matching = ask([1, 2, 3], {"categories": [11]}, k=1)
    assert matching.services == [3]
    assert matching.explanations_short == ["Popular in your search"]
    # 3 matches both facets, 4 one (but was never ordered), 1 and 2 none (but ordered most).
    both = ask([1, 2, 3, 4], {"categories": [11, 12], "scientific_domains": [21]}, ranking=True)
    assert both.services == [3, 1, 2, 4]
    in_search, plain = "Popular in your search", "Popular"
    assert both.explanations_short == [in_search, plain, plain, in_search]


def test_unknown_ids_in_the_context_change_nothing(catalogue):
    train(env())
    plain = ask([1, 2, 3])
    other = ask([1, 2, 3], {"categories": [999, 2**62], "related_platforms": [-1]})
    assert other.services == plain.services


def test_a_retrained_model_is_served_without_restart(catalogue):
    train(env())
    popularity = engine("Popularity")
    assert popularity.model_version() == 1
    assert ask([1, 4], k=1).services == [1]
    for _ in range(16):  # 16 clicks outweigh 3 orders (a click counts a quarter)
        panel_click(4)
    train(env())
    assert popularity.model_version() == 2
    assert ask([1, 4], k=1).services == [4]


def test_a_service_added_after_training_is_ranked_not_an_error(catalogue):
    train(env())
    dump = {**catalogue, "services": [*catalogue["services"], service(7, categories=[11])]}
    load(dump)
    assert ask([7, 4, 1], ranking=True).services == [1, 4, 7]
    assert ask([7, 4], {"categories": [11]}, k=1).services == [7]


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_top_k_equals_a_full_sort_even_with_ties(k):
    rng = np.random.default_rng(k)
    ids = rng.permutation(50) + 100
    scores = rng.integers(0, 4, 50).astype(float)  # many ties
    expected = np.lexsort((ids, -scores))[:k]
    assert top(ids, scores, k).tolist() == expected.tolist()


def test_pick_gives_one_of_two_shared_texts_per_element():
    yes, no = "".join(["in ", "context"]), "".join(["plain"])  # built: not interned literals
    texts = pick(np.array([True, False, True, True]), yes, no)
    assert texts == [yes, no, yes, yes]
    assert all(text is yes for text in texts[2:]) and texts[1] is no
    assert pick(np.array([], dtype=bool), yes, no) == []
