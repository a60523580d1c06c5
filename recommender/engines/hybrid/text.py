"""The Hybrid's text part: how close a candidate's words are to the words of the services the
user accessed last.

Each service's text (name, tagline and description) becomes a TF-IDF vector (scikit-learn's
`TfidfVectorizer`: sublinear term counts, words found in at least MIN_DOCUMENTS services, a
word being any run of letters or digits, so a version or a year counts); two services'
similarity is the cosine of their vectors, and each service keeps its MAX_NEIGHBOURS most
similar others (neighbours.py). A user's score for a candidate sums its similarities to the
services of their history, the latest weighing 1 and each older one `decay` times the one after
it (a service listed twice counts once, at its latest place); the decay is chosen on validation
among DECAYS.

Nothing else reads the names and descriptions (the content embeddings see categories, domains
and the other attribute ids). A service that few users accessed gets its neighbours from its
words, where the collaborative parts know little of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.engines.base.scoring import IdLists
from recommender.engines.hybrid import neighbours as shared
from recommender.id_index import IdIndex
from recommender.models.marketplace import Service
from recommender.store import get_db

FIELDS = ("name", "tagline", "description")
TOKEN_PATTERN = r"(?u)\b\w+\b"
MIN_DOCUMENTS = 2  # a word of one service only ties it to nothing
DECAYS = (0.8, 0.9, 0.95)
BLOCK_ROWS = 512  # services whose similarities to every service are computed at once (dense)


@dataclass(frozen=True)
class TextSimilarity:
    services: IdIndex
    similarities: sparse.csr_matrix  # [n + 1, n + 1], row 0 (unknown) empty, float64
    decay: float
    version: int = 0  # fitted by the Hybrid stage, stored with its similarities

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        return shared.history_scores(
            self.services, self.similarities, histories, candidates, self.decay
        )


def read_texts() -> dict[int, str]:
    """Service id -> its name, tagline and description joined (one projected read)."""
    projection = dict.fromkeys(FIELDS, 1)
    documents = get_db()[Service._get_collection_name()].find({}, projection)
    return {
        document["_id"]: " ".join(document[field] for field in FIELDS if document.get(field))
        for document in documents
    }


def similarities(texts: Sequence[str], keep: int = shared.MAX_NEIGHBOURS) -> sparse.csr_matrix:
    """[len(texts) + 1, len(texts) + 1] float32 CSR: row r + 1 holds text r's `keep` largest
    cosine similarities to the other texts (row and column 0, the unknown service, empty; all
    empty when no word is in MIN_DOCUMENTS texts)."""
    width = len(texts) + 1
    try:
        vectors = TfidfVectorizer(
            token_pattern=TOKEN_PATTERN,
            min_df=MIN_DOCUMENTS,
            sublinear_tf=True,
            dtype=np.float32,
        ).fit_transform(texts)
    except ValueError:  # no word is shared by MIN_DOCUMENTS texts: nothing is similar
        return sparse.csr_matrix((width, width), dtype=np.float32)
    vectors = sparse.vstack([sparse.csr_matrix((1, vectors.shape[1])), vectors]).tocsr()
    by_word = vectors.T.tocsr()
    blocks = []
    for start in range(0, width, BLOCK_ROWS):
        # Dense: texts share common words, so most pairs have some similarity.
        block = (vectors[start : start + BLOCK_ROWS] @ by_word).toarray()
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = 0.0  # a service is not its own neighbour
        blocks.append(shared.top_per_dense_row(block, keep))
    return sparse.vstack(blocks, format="csr")


def fit(services: IdIndex, texts: dict[int, str]) -> list[TextSimilarity]:
    """One part per decay of DECAYS, sharing the similarities of the services' texts (a
    service without one has no neighbours); none when no two services share a word."""
    matrix = similarities([texts.get(int(i), "") for i in services.ids])
    if matrix.nnz == 0:
        return []
    matrix = matrix.astype(np.float64)
    return [TextSimilarity(services, matrix, decay) for decay in DECAYS]


def arrays(part: TextSimilarity) -> dict[str, np.ndarray]:
    """The part's similarities as the arrays a stored version holds (see `from_arrays`)."""
    return shared.arrays(part.similarities)


def from_arrays(services: IdIndex, stored: dict[str, np.ndarray], decay: float) -> TextSimilarity:
    return TextSimilarity(services, shared.from_arrays(stored, services.rows_total), decay)
