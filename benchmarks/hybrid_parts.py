"""What the Hybrid's recent-history, co-visit and text parts add to a request: their serving paths
(one user, 1,000 candidates) beside EASE's part, at several history lengths.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hybrid_parts.py [--services 5000]
        [--candidates 1000] [--histories 5,20,100] [--seed 42]

B is a random dense matrix of the serving benchmark's catalogue size (the cost of a gather does
not depend on the values); the co-visit weights a random sparse float64 matrix (as served) with
MAX_NEIGHBOURS per service (its largest size) and the wider window; the text similarities a
matrix of the same size (the text part sums over the whole history, without a window); times are
timeit's best of 5 runs of 2,000 calls.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def per_call_ms(score, calls: int = 2000) -> float:
    return min(timeit.repeat(score, number=calls, repeat=5)) / calls * 1e3


def main() -> None:
    from scipy import sparse

    from recommender.engines.base.scoring import IdLists
    from recommender.engines.ease.model import component
    from recommender.engines.hybrid.covisits import SETTINGS, CoVisits
    from recommender.engines.hybrid.model import RecentHistory
    from recommender.engines.hybrid.neighbours import MAX_NEIGHBOURS
    from recommender.engines.hybrid.text import DECAYS, TextSimilarity
    from recommender.id_index import IdIndex

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--histories", default="5,20,100")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.services
    ids = np.arange(1, n + 1, dtype=np.int64)
    weights = np.zeros((n + 1, n + 1), dtype=np.float32)
    weights[1:, 1:] = rng.random((n, n), dtype=np.float32)
    ease = component(1, ids, weights, rng.random(n))
    recent = RecentHistory(ease, 0.85)
    neighbours = sparse.vstack(  # row 0 (unknown ids) empty
        [
            sparse.csr_matrix((1, n + 1), dtype=np.float64),
            sparse.random(n, n + 1, density=MAX_NEIGHBOURS / n, dtype=np.float64, rng=rng),
        ],
        format="csr",
    )
    covisits = CoVisits(IdIndex(ids), neighbours, max(SETTINGS, key=lambda s: s.window))
    text = TextSimilarity(IdIndex(ids), neighbours, DECAYS[-1])
    candidates = rng.choice(ids, args.candidates, replace=False)[None]
    user = np.zeros(1, dtype=np.int64)
    parts = ("EASE", "recent-history", "co-visit", "text")
    print("| history length | " + " | ".join(f"{part} part ms" for part in parts) + " |")
    print("|---:|---:|---:|---:|---:|")
    for length in (int(value) for value in args.histories.split(",")):
        history = IdLists.one(rng.choice(ids, length, replace=False))
        ease_ms = per_call_ms(lambda h=history: ease.batch_scores(user, h, candidates))
        recent_ms = per_call_ms(lambda h=history: recent.batch_scores(user, h, candidates))
        covisit_ms = per_call_ms(lambda h=history: covisits.batch_scores(user, h, candidates))
        text_ms = per_call_ms(lambda h=history: text.batch_scores(user, h, candidates))
        print(f"| {length} | {ease_ms:.3f} | {recent_ms:.3f} | {covisit_ms:.3f} | {text_ms:.3f} |")


if __name__ == "__main__":
    main()
