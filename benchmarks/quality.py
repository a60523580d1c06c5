"""Quality benchmark: every personalised engine and the champion against validation-tuned peers
(TopPop, EASE, implicit's ALS and BPR) on MovieLens, over several seeds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py [--data ../shared/data/ml-latest-small]
        [--seeds 42,1,2,3,4] [--jobs 1] [--json docs/benchmarks/quality.json]

Per seed, in its own subprocess (a fresh in-process store):
1. `ml-latest-small` becomes a Marketplace dump: movies -> published services whose categories
   are their genres; ratings (any value: implicit feedback) -> each user's `accessed_services`
   in time order (ties in a user's timestamps: by movie id, the file's order); users get the
   categories of their three most rated genres, counted without their last two ratings (the
   held-out ones, so the profile does not leak them).
2. The dump is validated and loaded as `/update` loads it, then the training chain's stages run
   in order (the functions `train_chain` calls): ae, embedding, ncf, ease, ials, popularity,
   hybrid, champion. Each engine tunes its own grid on the tune part of validation.
3. The evaluation protocol (recommender.evaluation.protocol) gives the split and the sampled
   negatives; every model is read once on test: sampled (99 negatives) HR/NDCG@3/10 and
   full-catalogue HR/NDCG@10, Recall@10, MRR and coverage of the top 10s. Our engines are scored
   through their serving components (what `flask evaluate` runs); AutoRanking is the champion's
   engine, chosen on the gate part of validation.
4. Peers are tuned on the whole validation set (NDCG@10 over the grid below; as large a grid as
   the engine of the same family gets, or larger) and read once on test.

The parent aggregates: per model and metric the mean over seeds with a 95% t interval, and a
paired comparison (same seeds) of AutoRanking with the best peer on each metric.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-latest-small"
DEFAULT_SEEDS = "42,1,2,3,4"
STAGES = ("ae", "embedding", "ncf", "ease", "ials", "popularity", "hybrid", "champion")
OURS = {"NCF": "ncf", "EASE": "ease", "iALS": "ials", "Hybrid": "hybrid"}
HELD_OUT = 2  # the last two ratings per user (validation and test)
TOP_GENRES = 3
KS = (3, 10)
PEER_GRIDS = {
    "EASE (peer)": [{"lam": lam} for lam in (100.0, 200.0, 400.0, 800.0, 1600.0)],
    "implicit ALS": [
        {"factors": f, "regularization": r, "alpha": a}
        for f, r, a in product((64, 128, 256), (10.0, 30.0, 100.0), (1.0, 5.0))
    ],
    "implicit BPR": [
        {"factors": f, "learning_rate": lr, "regularization": r}
        for f, lr, r in product((64, 128), (0.01, 0.05), (0.001, 0.01))
    ],
}


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


# --- peers -------------------------------------------------------------------------------------


def training_matrix(data, split):
    from scipy import sparse

    matrix = sparse.csr_matrix(
        (np.ones(len(split.train_users), np.float32), (split.train_users, split.train_services)),
        shape=(data.users.rows_total, data.width),
    )
    matrix.data[:] = 1.0
    return matrix


def ease_peer(data, split, seed: int, lam: float):
    from recommender.engines.ease.model import ease_weights, gram

    weights = ease_weights(
        gram(split.train_users, split.train_services, data.users.rows_total, data.width), lam
    )
    matrix = training_matrix(data, split)
    return lambda users, items: np.take_along_axis(
        np.asarray(matrix[users] @ weights), items, axis=1
    )


def implicit_peer(model):
    def fitted(data, split, seed: int, **setting):
        instance = model(**setting, random_state=seed, num_threads=1)
        instance.fit(training_matrix(data, split), show_progress=False)
        users, items = instance.user_factors, instance.item_factors
        return lambda u, i: np.einsum("nf,nmf->nm", users[u], items[i])

    return fitted


def peer_builders():
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return {
        "EASE (peer)": ease_peer,
        "implicit ALS": implicit_peer(lambda **s: AlternatingLeastSquares(iterations=15, **s)),
        "implicit BPR": implicit_peer(lambda **s: BayesianPersonalizedRanking(iterations=100, **s)),
    }


def tuned_peers(data, split, seed: int) -> dict:
    """Each peer's best setting on the whole validation set (NDCG@10), read once on test."""
    from recommender.evaluation import protocol

    results = {}
    counts = split.train_counts(data.width)
    started = time.perf_counter()
    results["TopPop"] = {
        **protocol.held_out_metrics(
            lambda users, items: counts[items], data, split, split.test, KS, seed, None
        ),
        "training_s": time.perf_counter() - started,
    }
    for name, build in peer_builders().items():
        best, grid = None, []
        started = time.perf_counter()
        for setting in PEER_GRIDS[name]:
            scorer = build(data, split, seed, **setting)
            valid = protocol.sampled_metrics(scorer, split.valid, KS, seed)
            grid.append({"setting": setting, "valid_ndcg@10": valid["ndcg@10"]})
            if best is None or valid["ndcg@10"] > best[0]:
                best = (valid["ndcg@10"], setting, scorer)
        seconds = time.perf_counter() - started
        test = protocol.held_out_metrics(best[2], data, split, split.test, KS, seed, None)
        results[name] = {**test, "chosen": best[1], "grid": grid, "tuning_s": seconds}
        print(f"{name}: {best[1]} in {seconds:.0f} s", file=sys.stderr)
    rng = np.random.default_rng(seed)
    results["Random"] = protocol.held_out_metrics(
        lambda users, items: rng.random(items.shape), data, split, split.test, KS, seed, None
    )
    return results


# --- one seed ----------------------------------------------------------------------------------


def ours(data, split, seed: int, stages: dict) -> dict:
    """Test metrics of each trained engine through its serving component, and AutoRanking."""
    from recommender.engines.base.scoring import component_scorer
    from recommender.engines.ease.inference import live_component as ease_component
    from recommender.engines.hybrid.inference import live_component as hybrid_component
    from recommender.engines.ials.inference import live_component as ials_component
    from recommender.engines.ncf.inference import component as ncf_component
    from recommender.evaluation import protocol
    from recommender.services.health import training
    from recommender.services.runtime import runtime

    deps = runtime().deps
    components = {
        "NCF": ncf_component(deps),
        "EASE": ease_component(deps),
        "iALS": ials_component(deps),
        "Hybrid": hybrid_component(deps),
    }
    results = {}
    for name, component in components.items():
        if component is None:
            results[name] = {"status": stages[OURS[name]]["status"]}
            continue
        started = time.perf_counter()
        scorer = component_scorer(component, data, split)
        results[name] = protocol.held_out_metrics(scorer, data, split, split.test, KS, seed, None)
        results[name]["training_s"] = stages[OURS[name]]["seconds"]
        results[name]["evaluation_s"] = time.perf_counter() - started
        print(f"{name}: evaluated in {results[name]['evaluation_s']:.0f} s", file=sys.stderr)
    champion = training()["champion"]
    results["AutoRanking"] = {**results[champion["engine"]], "champion": champion["engine"]}
    return results


def run_seed(directory: Path, seed: int) -> dict:
    from recommender import create_app
    from recommender.dump.loader import load_catalogue
    from recommender.dump.references import drop_dangling_references
    from recommender.dump.schema import validate_dump
    from recommender.engines.base.interactions import read_interactions
    from recommender.evaluation import protocol
    from recommender.models.ops import PipelineMetadata
    from recommender.services.update import train_stage

    result: dict = {"seed": seed, "threads": os.environ.get("OMP_NUM_THREADS"), "stages": {}}
    dump = movielens_dump(directory)
    # No full-catalogue figures inside the pipelines: the benchmark computes them for everyone.
    app = create_app(
        "testing", MONGODB_HOST="mongomock", TRAINING_RUNS_DIR="off", EVALUATION_FULL_USERS=0
    )
    with app.app_context():
        entities = validate_dump(dump)
        drop_dangling_references(entities)
        result["counts"] = load_catalogue(entities)
        for name in STAGES:
            started = time.perf_counter()
            outcome = train_stage(name, seed, progress=False)
            seconds = time.perf_counter() - started
            metadata = PipelineMetadata.objects(pipeline=outcome.pipeline).order_by("-id").first()
            train = {s.name: s.details for s in metadata.steps}.get("train", {}) if metadata else {}
            result["stages"][name] = {
                "status": outcome.status,
                "reason": outcome.reason,
                "seconds": seconds,
                "chosen": train.get("chosen"),
                "gate": (outcome.metrics.get("model") or {}).get("gate"),
            }
            print(f"{name}: {outcome.status} in {seconds:.1f} s", file=sys.stderr)
        data = read_interactions()
        split = protocol.split(data, seed)
        result["users"] = {"test": len(split.test.users), "valid": len(split.valid.users)}
        result["models"] = {**ours(data, split, seed, result["stages"])}
        result["models"].update(tuned_peers(data, split, seed))
    return result


# --- aggregation -------------------------------------------------------------------------------

METRICS = (
    ("hr@10", "HR@10"),
    ("ndcg@10", "NDCG@10"),
    ("full.hr@10", "full HR@10"),
    ("full.ndcg@10", "full NDCG@10"),
    ("full.mrr", "full MRR"),
    ("full.coverage@10", "coverage@10"),
)
PEERS = ("TopPop", "EASE (peer)", "implicit ALS", "implicit BPR")


def value(metrics: dict, key: str) -> float:
    for part in key.split("."):
        metrics = metrics[part]
    return float(metrics)


def summary(runs: list[dict]) -> dict:
    from recommender.evaluation.statistics import mean_interval, paired_difference

    names = [name for name in runs[0]["models"] if "hr@10" in runs[0]["models"][name]]
    table = {}
    for name in names:
        table[name] = {
            key: mean_interval([value(r["models"][name], key) for r in runs]).as_dict()
            for key, _ in METRICS
        }
        # Ours: the stage's training time (grid included); peers: their whole grid's.
        seconds = [
            r["models"][name].get("training_s", r["models"][name].get("tuning_s")) for r in runs
        ]
        if all(s is not None for s in seconds):
            table[name]["training_s"] = mean_interval(seconds).as_dict()
    comparisons = {}
    for key, _ in METRICS:
        best = max(PEERS, key=lambda peer: table[peer][key]["mean"])
        ours_ = [value(r["models"]["AutoRanking"], key) for r in runs]
        theirs = [value(r["models"][best], key) for r in runs]
        comparisons[key] = {
            "best_peer": best,
            "relative_gain": float(np.mean(ours_) / np.mean(theirs) - 1),
            **(paired_difference(ours_, theirs).as_dict() if len(runs) > 1 else {}),
        }
    return {"models": table, "autoranking_vs_best_peer": comparisons}


def markdown(result: dict) -> str:
    lines = [
        "| Model | " + " | ".join(label for _, label in METRICS) + " | training + tuning s |",
        "|---|" + "---:|" * (len(METRICS) + 1),
    ]
    for name, row in result["summary"]["models"].items():
        cells = [
            f"{row[key]['mean']:.3f} ({row[key]['ci'][0]:.3f}-{row[key]['ci'][1]:.3f})"
            for key, _ in METRICS
        ]
        seconds = f"{row['training_s']['mean']:.1f}" if "training_s" in row else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds} |")
    lines.append("")
    for key, c in result["summary"]["autoranking_vs_best_peer"].items():
        lines.append(
            f"- {key}: AutoRanking vs {c['best_peer']}: {100 * c['relative_gain']:+.1f}%"
            + (
                f", paired difference {c['mean_difference']:+.4f} "
                f"({c['ci'][0]:+.4f} to {c['ci'][1]:+.4f}), p = {c['p_value']:.3f}"
                if "ci" in c
                else ""
            )
        )
    champions = Counter(r["models"]["AutoRanking"]["champion"] for r in result["runs"])
    lines.append(f"- champions: {dict(champions)}")
    return "\n".join(lines)


def one_seed(seed: int, data: Path) -> dict:
    """One seed's run in a process of its own (its own in-process store)."""
    command = [sys.executable, __file__, "--one", str(seed), "--data", str(data)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"seed {seed} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default=DEFAULT_SEEDS)
    parser.add_argument("--json", type=Path, help="write the per-seed results and summary here")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one seed -> JSON
    parser.add_argument("--table", action="store_true", help="only print --json's table")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (one per core)")
    args = parser.parse_args()
    if args.table:
        runs = json.loads(args.json.read_text())["runs"]
        print(markdown({"runs": runs, "summary": summary(runs)}))
        return
    if args.one is not None:
        print(json.dumps(run_seed(args.data, args.one)))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    finished: dict[int, dict] = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = pool.map(lambda seed: one_seed(seed, args.data), seeds)
        for seed, run in zip(seeds, results, strict=True):
            finished[seed] = run
            if args.json:  # what is done so far survives a later failure
                args.json.write_text(json.dumps({"runs": list(finished.values())}, indent=1))
    runs = [finished[seed] for seed in seeds]
    result = {"runs": runs, "summary": summary(runs)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print(markdown(result))


if __name__ == "__main__":
    main()
