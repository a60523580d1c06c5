"""Quality benchmark: NCF against Popularity, Random and implicit's ALS on MovieLens.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py [--data ../shared/data/ml-latest-small]
        [--seed 42] [--json results.json]

1. `ml-latest-small` becomes a Marketplace dump: movies -> published services whose categories
   are their genres; ratings (any value: implicit feedback) -> each user's `accessed_services`
   in time order; users get the categories of their three most rated genres, counted without
   their last two ratings (the held-out ones, so the profile does not leak them).
2. The dump is validated and loaded as `/update` loads it, then the training chain's stages run
   in order up to "ncf" (ae -> embedding -> ncf, the functions `train_chain` calls).
3. Every model is scored on the split and sampled negatives the NCF pipeline used (leave-last-out
   per user, the held-out service against 99 services the user never rated, seeded): NCF and
   Popularity as the pipeline recorded them, NCF once more as served (the `flask evaluate`
   evaluator on the live model: it must agree), Random, and ALS (implicit.cpu.als, 32 factors,
   20 iterations) fitted on the same training pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-latest-small"
STAGES = ("ae", "embedding", "ncf")
HELD_OUT = 2  # the last two ratings per user (validation and test)
TOP_GENRES = 3
ALS = {"factors": 32, "iterations": 20}


def movielens_dump(directory: Path) -> dict:
    """The Marketplace-shaped dump described in the module doc."""
    movies = pd.read_csv(directory / "movies.csv")
    ratings = pd.read_csv(directory / "ratings.csv").sort_values(
        ["userId", "timestamp"], kind="stable"
    )
    movie_genres = {
        int(movie): [g for g in genres.split("|") if g != "(no genres listed)"]
        for movie, genres in zip(movies.movieId, movies.genres, strict=True)
    }
    genres = sorted({g for names in movie_genres.values() for g in names})
    genre_ids = {g: i for i, g in enumerate(genres, 1)}
    services = [
        {
            "id": int(movie),
            "name": str(title),
            "description": None,
            "tagline": None,
            "countries": [],
            "order_type": "open_access",
            "rating": None,
            "categories": [genre_ids[g] for g in movie_genres[int(movie)]],
            "providers": [],
            "resource_organisation": None,
            "scientific_domains": [],
            "platforms": [],
            "target_users": [],
            "related_services": [],
            "access_modes": [],
            "access_types": [],
            "trls": [],
            "life_cycle_statuses": [],
            "research_steps": [],
            "horizontal": False,
            "status": "published",
        }
        for movie, title in zip(movies.movieId, movies.title, strict=True)
    ]
    users = []
    for user_id, movies_of in ratings.groupby("userId", sort=True).movieId:
        accessed = [int(m) for m in movies_of]
        counts = Counter(g for m in accessed[:-HELD_OUT] for g in movie_genres.get(m, ()))
        users.append(
            {
                "id": int(user_id),
                "aai_uid": f"movielens-{user_id}",
                "scientific_domains": [],
                "categories": sorted(genre_ids[g] for g, _ in counts.most_common(TOP_GENRES)),
                "accessed_services": accessed,
            }
        )
    from recommender.dump.schema import DUMP_KEYS

    dump = {
        "services": services,
        "users": users,
        "categories": [{"id": i, "name": g} for g, i in genre_ids.items()],
    }
    # Every other kind (projects, providers, ...): MovieLens has nothing for them.
    return {key: dump.get(key, []) for key in DUMP_KEYS}


def candidate_matrix(held) -> np.ndarray:
    """[users, 1 + negatives] service rows: the held-out positive first, -1 for padding."""
    return np.concatenate([held.positives[:, None], held.negatives], axis=1)


def metrics_of(scores: np.ndarray, items: np.ndarray, seed: int) -> dict:
    from recommender.evaluation.metrics import score_metrics

    scores = np.where(items < 0, -np.inf, scores)
    return score_metrics(scores[:, 0], scores[:, 1:], rng=np.random.default_rng(seed))


def als_scores(data, split, items: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy import sparse

    matrix = sparse.csr_matrix(
        (np.ones(len(split.train_users), np.float32), (split.train_users, split.train_services)),
        shape=(data.users.rows_total, data.width),
    )
    model = AlternatingLeastSquares(**ALS, random_state=seed)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    users = model.user_factors[split.test.users]
    scores = np.einsum("nd,nmd->nm", users, model.item_factors[np.maximum(items, 0)])
    return scores, seconds


def run(directory: Path, seed: int) -> dict:
    from recommender import create_app
    from recommender.dump.loader import load_catalogue
    from recommender.dump.references import drop_dangling_references
    from recommender.dump.schema import validate_dump
    from recommender.engines.ncf import data as ncf_data
    from recommender.engines.ncf.inference import offline_metrics
    from recommender.services.runtime import runtime
    from recommender.services.update import train_stage

    result: dict = {"seed": seed, "threads": os.environ.get("OMP_NUM_THREADS"), "stages": {}}
    started = time.perf_counter()
    dump = movielens_dump(directory)
    result["convert_s"] = time.perf_counter() - started
    app = create_app("testing", MONGODB_HOST="mongomock", TRAINING_RUNS_DIR="off")
    with app.app_context():
        started = time.perf_counter()
        entities = validate_dump(dump)
        drop_dangling_references(entities)
        result["counts"] = load_catalogue(entities)
        result["load_s"] = time.perf_counter() - started
        outcomes = {}
        for name in STAGES:
            started = time.perf_counter()
            outcomes[name] = train_stage(name, seed, progress=False)
            seconds = time.perf_counter() - started
            result["stages"][name] = {"status": outcomes[name].status, "seconds": seconds}
            print(f"{name}: {outcomes[name].status} in {seconds:.1f} s", file=sys.stderr)
            if not outcomes[name].ok:
                raise SystemExit(f"stage {name}: {outcomes[name].reason}")
        ncf = outcomes["ncf"].metrics
        data = ncf_data.read_interactions()
        split = ncf_data.split(data, seed)
        items = candidate_matrix(split.test)
        rng = np.random.default_rng(seed)
        als, als_s = als_scores(data, split, items, seed)
        result["models"] = {
            "NCF": {
                **ncf["ncf"]["test"],
                "training_s": sum(result["stages"][s]["seconds"] for s in STAGES),
            },
            "NCF (served)": offline_metrics(runtime().deps, seed=seed),
            "Popularity": ncf["popularity"]["test"],
            "Random": metrics_of(rng.random(items.shape), items, seed),
            f"ALS ({ALS['factors']} factors, {ALS['iterations']} it.)": {
                **metrics_of(als, items, seed),
                "training_s": als_s,
            },
        }
        result["ncf_valid"] = ncf["ncf"]["valid"]
        result["ncf_epochs"] = {"best": ncf["best_epoch"], "run": ncf["epochs"]}
    return result


def table(result: dict) -> str:
    lines = [
        "| Model | HR@10 | NDCG@10 | HR@3 | NDCG@3 | training s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["models"].items():
        seconds = f"{m['training_s']:.1f}" if "training_s" in m else ""
        lines.append(
            f"| {name} | {m['hr@10']:.3f} | {m['ndcg@10']:.3f} | {m['hr@3']:.3f} "
            f"| {m['ndcg@3']:.3f} | {seconds} |"
        )
    stages = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in result["stages"].items())
    lines.append("")
    lines.append(
        f"{result['models']['NCF']['users']} users; stages: {stages}; NCF best epoch "
        f"{result['ncf_epochs']['best']} of {result['ncf_epochs']['run']}; "
        f"OMP_NUM_THREADS={result['threads']}, {os.cpu_count()} CPUs"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args()
    result = run(args.data, args.seed)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(table(result))


if __name__ == "__main__":
    main()
