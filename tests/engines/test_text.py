"""The Hybrid's text part (engines/hybrid/text.py): TF-IDF similarities and scores against
values written out by hand, and the dense per-row cut it uses (neighbours.py)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommender.engines.base.scoring import IdLists
from recommender.engines.hybrid import neighbours as shared
from recommender.engines.hybrid import text
from recommender.engines.hybrid.text import TextSimilarity, similarities
from recommender.id_index import IdIndex
from recommender.models.marketplace import Service

# "delta" and "epsilon" are each in one text only (fewer than MIN_DOCUMENTS): they count for
# nothing, and the last text shares no word with the others.
TEXTS = ["alpha beta beta", "alpha gamma", "beta gamma delta", "Alpha 2024", "epsilon"]
SERVICES = IdIndex(np.array([11, 12, 13, 14, 15]))  # rows 1..5: TEXTS in order
BY_ID = dict(zip(SERVICES.ids.tolist(), TEXTS, strict=True))


def by_hand() -> np.ndarray:
    """[6, 6] cosines of TEXTS' TF-IDF vectors over alpha, beta, gamma (the words in two or
    more texts; "2024" is in one): smoothed idf ln((1 + n) / (1 + df)) + 1, sublinear term
    counts 1 + ln(count); rows 1..5 the texts, row 0 the unknown service; no self-pairs."""
    counts = np.array(
        [[1, 2, 0], [1, 0, 1], [0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=float
    )  # alpha, beta, gamma per text
    df = (counts > 0).sum(axis=0)
    idf = np.log((1 + len(TEXTS)) / (1 + df)) + 1
    tf = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0.0)
    vectors = tf * idf
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.where(norms > 0, vectors / np.where(norms > 0, norms, 1), 0.0)
    expected = np.zeros((6, 6))
    expected[1:, 1:] = unit @ unit.T
    np.fill_diagonal(expected, 0.0)
    return expected


def test_similarities_are_the_cosines_of_the_tf_idf_vectors_without_self_pairs():
    matrix = similarities(TEXTS)

    np.testing.assert_allclose(matrix.toarray(), by_hand(), rtol=1e-6)
    # Words are case-free and digits count as a word: "Alpha 2024" shares "alpha".
    assert matrix[4, 1] > 0 and matrix[5].nnz == 0 and matrix[0].nnz == 0


def test_each_service_keeps_its_most_similar_others():
    full = by_hand()

    kept = similarities(TEXTS, keep=1).toarray()

    for row in range(1, 6):
        nonzero = np.flatnonzero(full[row])
        largest = nonzero[np.lexsort((nonzero, -full[row, nonzero]))][:1]
        np.testing.assert_array_equal(np.flatnonzero(kept[row]), largest)


def test_similarities_are_made_a_block_of_services_at_a_time(monkeypatch):
    monkeypatch.setattr(text, "BLOCK_ROWS", 2)

    np.testing.assert_allclose(similarities(TEXTS).toarray(), by_hand(), rtol=1e-6)


def test_no_shared_word_gives_no_part():
    services = IdIndex(np.array([10, 20]))

    assert text.fit(services, {10: "one", 20: "two"}) == []
    assert similarities(["one", "two"]).nnz == 0


def test_a_users_score_sums_similarities_from_the_latest_services_by_recency():
    services = SERVICES
    decay = 0.9
    (part,) = [p for p in text.fit(services, BY_ID) if p.decay == decay]
    sims = by_hand()
    # Oldest first; 11 is listed twice and counts once, at its latest place (2 after it
    # would be 0 after). 99 is unknown: no similarity.
    history = np.array([11, 13, 99, 11, 12])
    candidates = np.array([[14, 15, 13, 99]])

    scores = part.batch_scores(np.array([1]), IdLists.one(history), candidates)[0]

    rows = services.rows(candidates[0])
    # After 12 (row 2): 0; after 11 (row 1): 1; after 99: 2; after 13 (row 3): 3.
    expected = sims[2, rows] + decay * sims[1, rows] + decay**3 * sims[3, rows]
    expected[rows == 0] = 0.0
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    # One user alone scores as the same user in a batch.
    batch = IdLists(np.array([0, 2, 7]), np.concatenate([[15, 14], history]))
    np.testing.assert_allclose(
        part.batch_scores(np.array([1, 2]), batch, np.repeat(candidates, 2, axis=0))[1],
        scores,
    )


def test_a_stored_part_scores_as_the_fitted_one():
    services = SERVICES
    fitted = text.fit(services, BY_ID)[0]
    stored = {key: value.copy() for key, value in text.arrays(fitted).items()}

    rebuilt = text.from_arrays(services, stored, fitted.decay)

    assert isinstance(rebuilt, TextSimilarity) and rebuilt.decay == fitted.decay
    history, candidates = IdLists.one(np.array([12, 11])), np.array([[13, 14, 15]])
    np.testing.assert_array_equal(
        rebuilt.batch_scores(np.array([1]), history, candidates),
        fitted.batch_scores(np.array([1]), history, candidates),
    )


def test_texts_are_read_from_the_catalogue_with_the_missing_fields_left_out(app):
    Service(id=1, name="Data Lake", tagline="storage, archive", description=None).save()
    Service(id=2, name="Notebook", tagline=None, description="Run Python.").save()

    texts = text.read_texts()

    assert texts == {1: "Data Lake storage, archive", 2: "Notebook Run Python."}


def test_the_dense_cut_keeps_what_the_sparse_one_keeps_ties_included():
    # Small integers: many ties at each row's cut, and zeros, which neither keeps.
    block = np.random.default_rng(3).integers(0, 4, size=(40, 30)).astype(np.float32)

    for keep in (1, 5, 29, 30, 50):
        dense = shared.top_per_dense_row(block, keep)
        expected = shared.top_per_row(sparse.csr_matrix(block), keep)
        np.testing.assert_array_equal(dense.toarray(), expected.toarray())
