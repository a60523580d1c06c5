"""Page abstraction, symbolic rewards from the transition table, numeric values."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.sessions.rewards import (
    abstract_page,
    combine,
    service_value,
    service_values,
    symbol,
    transition_table,
)


@pytest.mark.parametrize(
    ("page", "abstract"),
    [
        ("/services", "/services"),
        ("/service", "/services"),  # the Marketplace's list panel page id
        ("/services/", "/services"),
        ("/services?q=cloud&page=2", "/services"),
        ("/services/c/compute", "/services"),
        ("/services/egi-cloud-compute", "/services/{id}"),
        ("/services/1234", "/services/{id}"),
        ("/services/egi-cloud-compute/offers", "/services/{id}/offers"),
        ("/services/egi-cloud-compute/details", "/services/{id}/details"),
        ("/services/x/opinions#top", "/services/{id}/opinions"),
        ("/services/x/information", "/services/{id}/information"),
        ("/services/x/configuration", "/services/{id}/configuration"),
        ("/services/x/summary", "/services/{id}/summary"),
        ("https://marketplace.example/services/x/summary/", "/services/{id}/summary"),
        ("/services/x/questions", "unknown_page_id"),
        ("/comparisons", "/comparisons"),
        ("/comparisons/services", "/comparisons"),
        ("/projects", "unknown_page_id"),
        ("services_catalogue_list", "unknown_page_id"),
        ("", "unknown_page_id"),
        (None, "unknown_page_id"),
    ],
)
def test_pages_are_abstracted(page, abstract):
    assert abstract_page(page) == abstract


@pytest.mark.parametrize(
    ("source", "target", "order", "expected"),
    [
        ("/services", "/services/egi-notebooks", False, "mild_interest"),
        ("/services/egi-notebooks", "/services/egi-notebooks/details", False, "mild_interest"),
        ("/services/egi-notebooks", "/services/egi-notebooks/offers", False, "interest"),
        ("/services/a/offers", "/services/a/information", False, "interest"),
        ("/services/a/details", "/services/a/details", False, "simple_transition"),
        ("/services/a/summary", "/projects", True, "order"),
        ("/services/a/offers", "/projects", True, "order"),  # an order is always an order
        ("/services/a", "/services", False, "unknown_transition"),
        ("services_catalogue_list", "/services/a/offers", False, "interest"),
    ],
)
def test_symbols_come_from_the_transition_table(source, target, order, expected):
    assert symbol(source, target, order) == expected


def test_the_table_is_read_once_and_covers_every_page_pair():
    table = transition_table()

    assert transition_table() is table
    sources = {s for s, _ in table}
    targets = {t for _, t in table}
    assert len(sources) == 11 and len(targets) == 11
    assert len(table) == 121


def test_a_service_is_worth_its_best_symbol_and_a_recommendation_the_rms():
    assert service_value(["simple_transition", "mild_interest", "interest"]) == 0.7
    assert service_value([]) == 0.0
    values = service_values([["order"], ["mild_interest"], []])

    np.testing.assert_allclose(values, [1.0, 0.3, 0.0])
    assert combine(values) == pytest.approx(np.sqrt((1.0 + 0.09) / 3))
    np.testing.assert_allclose(combine(np.array([[1, 1, 1], [0, 0, 0]])), [1.0, 0.0])
