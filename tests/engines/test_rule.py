"""InterestRule: shared declared interests first, popularity breaks ties, then the lower id."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import sparse

from recommender.engines.base.engine import RecommendationContext
from recommender.engines.rule import SPEC
from recommender.engines.rule.scoring import overlap, popularity_tiebreak, rule_scores
from recommender.models.activity import Recommendation
from recommender.services.bookkeeping import writer
from tests.api.helpers import body, load
from tests.app_helpers import engine
from tests.marketplace_dump import marketplace_dump, service

MEMBER = 1000  # declares category 10 and domain 21


def user(user_id: int, accessed: list[int], categories=(), domains=()) -> dict:
    return {
        "id": user_id,
        "aai_uid": f"u{user_id}@egi.eu",
        "scientific_domains": list(domains),
        "categories": list(categories),
        "accessed_services": accessed,
    }


@pytest.fixture
def catalogue(app):
    """Services 1..7 (7 is a draft). Shared with the member: 1 and 2 both of their interests;
    3, 4, 5 one each; 6 none. Accessed by: 6 three users, 5 two, 2 and 3 one, 1 and 4 none."""
    dump = marketplace_dump()
    dump["services"] = [
        service(1, categories=[10], scientific_domains=[21]),
        service(2, categories=[10, 12], scientific_domains=[21]),
        service(3, categories=[10], scientific_domains=[20]),
        service(4, categories=[11], scientific_domains=[21]),
        service(5, "unverified", categories=[12], scientific_domains=[21]),
        service(6, categories=[11], scientific_domains=[20]),
        service(7, "draft", categories=[10], scientific_domains=[21]),
    ]
    dump["users"] = [
        user(MEMBER, [], categories=[10], domains=[21]),
        user(1001, [6, 5, 2]),
        user(1002, [6, 5, 3]),
        user(1003, [6, 7]),
        user(1004, [], categories=[11]),
    ]
    dump["projects"] = []
    return load(dump)


def ask(candidates, user_id=None, search_data=None, k: int = 3, ranking: bool = False):
    context = RecommendationContext(
        candidates=np.asarray(candidates, dtype=np.int64),
        user_id=user_id,
        search_data=search_data or {},
        unique_id="x",
        timestamp=dt.datetime(2024, 1, 1),
    )
    return engine("InterestRule").answer(context, k, ranking)


def test_scores_order_by_overlap_then_popularity():
    visitors = sparse.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0]]))
    services = sparse.csr_matrix(np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1]]))
    assert overlap(visitors, services).tolist() == [[2, 1, 0], [0, 0, 0]]
    popularity = np.array([0.0, 3.0, 99.0])
    breaks = popularity_tiebreak(popularity)
    assert breaks[0] == 0.0 and 0.0 < breaks[1] < breaks[2] < 1.0
    assert breaks[2] == pytest.approx(np.log(100) / (np.log(100) + 1))
    # One shared interest beats any popularity; within an overlap, the more popular first.
    scores = rule_scores(np.array([1, 0, 0, 1]), np.array([0.0, 99.0, 5.0, 2.0]))
    assert np.argsort(-scores, kind="stable").tolist() == [3, 0, 1, 2]
    # A catalogue-wide maximum keeps scores of different requests on one scale.
    assert rule_scores(np.array([0]), np.array([3.0]), most=99.0)[0] == pytest.approx(
        np.log(4) / (np.log(100) + 1)
    )


def test_overlapping_services_first_popularity_breaks_ties(catalogue):
    result = ask([6, 5, 4, 3, 2, 1], user_id=MEMBER, ranking=True)
    # 2 and 1 share both interests (2 accessed once, 1 never); 5, 3, 4 share one (5 accessed
    # twice, 3 once, 4 never); 6, the most accessed, shares none.
    assert result.services == [2, 1, 5, 3, 4, 6]
    assert result.scores == sorted(result.scores, reverse=True)
    assert [int(s) for s in result.scores] == [2, 2, 1, 1, 1, 0]
    assert result.explanations_short[:5] == ["Shares your interests"] * 5
    assert result.explanations_short[5] == "Popular"
    assert ask([6, 5, 4, 3, 2, 1], user_id=MEMBER).services == [2, 1, 5]


def test_equal_scores_are_broken_by_the_lower_id(catalogue):
    # 4 and 1: never accessed; 4 shares domain 21, 1 category 10 and domain 21.
    assert ask([4, 3], user_id=1004, k=1).services == [4]  # 4 shares category 11, 3 none
    assert ask([4, 1], user_id=1001, ranking=True).services == [1, 4]  # nothing declared


def test_a_user_without_declared_interests_gets_the_most_accessed(catalogue):
    assert ask([1, 2, 3, 4, 5, 6], user_id=1001).services == [6, 5, 2]


def test_an_anonymous_request_uses_its_search_filters(catalogue):
    assert ask([1, 2, 3, 4, 5, 6]).services == [6, 5, 2]  # no filters: popularity
    filtered = ask([1, 2, 3, 4, 5, 6], search_data={"categories": [11]}, ranking=True)
    assert filtered.services == [6, 4, 5, 2, 3, 1]
    both = ask([1, 3, 4, 6], search_data={"categories": [10], "scientific_domains": [21]})
    assert both.services == [1, 3, 4]


def test_declared_interests_follow_a_new_dump(catalogue):
    assert ask([3, 4], user_id=1004, k=1).services == [4]
    dump = {**catalogue, "users": [*catalogue["users"][:-1], user(1004, [], categories=[10])]}
    load(dump)
    assert ask([3, 4], user_id=1004, k=1).services == [3]


def test_served_through_post_recommendations(client, catalogue):
    request = body(user_id=MEMBER, engine_version="InterestRule", candidates=[1, 2, 3, 4, 6])
    response = client.post("/recommendations", json=request)
    assert response.status_code == 200, response.json
    assert response.json["engine_version"] == "InterestRule"
    assert response.json["recommendations"] == [2, 1, 3]
    writer.flush()
    stored = Recommendation.objects(visit_id=request["visit_id"]).get()
    assert stored.engine_version == "InterestRule" and stored.services == [2, 1, 3]
    ranked = client.post(
        "/recommendations",
        json=body(user_id=MEMBER, engine_version="InterestRuleRanking", candidates=[6, 4, 1]),
    )
    assert ranked.json["engine_version"] == "InterestRuleRanking"
    assert ranked.json["recommendations"] == [1, 4, 6]


def test_anonymous_requests_for_the_rule_go_to_the_anonymous_engines(client, catalogue):
    answer = client.post("/recommendations", json=body(engine_version="InterestRule"))
    assert answer.status_code == 200
    assert answer.json["engine_version"] == "Random"  # Popularity is not trained here


def test_registered_by_default_before_random_and_healthy(client, catalogue):
    from recommender.services.runtime import runtime

    served = list(runtime().engines.served)
    assert served.index("InterestRule") == served.index("Random") - 1
    assert served.index("InterestRuleRanking") == served.index("RandomRanking") - 1
    assert SPEC.served == ("InterestRule", "InterestRuleRanking") and not SPEC.anonymous
    engines = client.get("/health").get_json()["recommender_engines"]
    assert engines["InterestRule"] == {"status": "UP"}
