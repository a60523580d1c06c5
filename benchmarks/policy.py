"""Serving policy benchmark: what recording propensities and exploring add to the server time of
`POST /recommendations` at 1,000 candidates.

    .venv/bin/python benchmarks/policy.py [--services 2000] [--users 500] [--candidates 1000]
        [--requests 4000] [--rounds 20] [--temperature 0.1] [--seed 42] [--store driver]
        [--json FILE]

One app in this process on the in-process (mongomock) store, seeded with a synthetic marketplace
(`seed_database`) and a trained Popularity; anonymous Marketplace-shaped requests with
CANDIDATES candidates each (a seeded draw of recommendable services), sent through Flask's test
client with the deferred writer storing every answer, as in production. Four policies, swapped
on the same app request by request (each request is sent under every policy in a shuffled order,
so that drift of the shared machine and of the growing store falls on all alike; `--rounds`
rounds of `--requests / --rounds` requests per policy):

- `before`: exploration off and no policy or propensities stored (the work before they were);
- `off`: exploration off, the policy and propensity 1 per position stored;
- `epsilon`: epsilon-greedy 0.05 (the default);
- `plackett_luce`: Plackett-Luce at `--temperature` over the best 20.

Per policy, for the request's wall time and for its thread's CPU time (`--store driver`: the
writer only encodes the documents, as a real MongoDB's client does, instead of mongomock's
pure-Python insert): p50 / p95 over all requests; per round the median's difference from
`before`, and its mean with a 95% interval over the rounds. Then the pieces in isolation
(timeit, best of 7): the greedy answer from 1,000 scored candidates, the epsilon-greedy and
Plackett-Luce answers (`ServingPolicy.draw`: generator, draw, answer), `record`, and the BSON
encoding of a stored answer without and with the recorded policy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import timeit
import uuid
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POLICIES = ("before", "off", "epsilon", "plackett_luce")


def build(args):
    from recommender import create_app
    from recommender.engines.popularity.pipeline import train
    from recommender.services.seeding import seed_database
    from recommender.services.update import training_env

    app = create_app("production", MONGODB_HOST="mongomock", RS_API_TOKEN=None)
    context = app.app_context()
    context.push()
    print(seed_database(args.users, args.services, sessions=200, seed=args.seed), flush=True)
    print("Popularity:", train(training_env()).status, flush=True)
    if args.store == "driver":
        encode_instead_of_storing()
    return app


def encode_instead_of_storing() -> None:
    """The deferred writer hands each batch of documents to pymongo's BSON encoder (what a
    client of a real MongoDB does in this process before sending them) and keeps nothing:
    mongomock's pure-Python insert, a cost the deployed service does not pay, is left out."""
    import bson

    from recommender.services import bookkeeping

    bookkeeping._insert = lambda _collection, docs: [bson.encode(doc) for doc in docs]


def bodies(args, n: int = 200) -> list[bytes]:
    from recommender.services.runtime import runtime

    ids = runtime().catalogue().recommendable_ids
    rng = np.random.default_rng(args.seed)
    return [
        json.dumps(
            {
                "user_id": "",
                "unique_id": str(uuid.UUID(int=int(rng.integers(2**62)))),
                "timestamp": "2024-02-21T15:19:43.512+0100",
                "visit_id": str(uuid.UUID(int=int(rng.integers(2**62)))),
                "page_id": "/services",
                "panel_id": "v1",
                "engine_version": "RL",
                "search_data": {},
                "client_id": "marketplace",
                "candidates": rng.choice(ids, size=args.candidates, replace=False).tolist(),
            }
        ).encode()
        for _ in range(n)
    ]


def use(policy: str, args) -> None:
    """Make `policy` the app's serving policy (as a restart with its settings would)."""
    from recommender.services import recommendations
    from recommender.services.runtime import runtime
    from recommender.services.serving_policy import ServingPolicy, record

    current = runtime()
    settings = {"EXPLORATION_EPSILON_V1": 0.0, "EXPLORATION_TEMPERATURE_V1": 0.0}
    if policy == "epsilon":
        settings["EXPLORATION_EPSILON_V1"] = 0.05
    elif policy == "plackett_luce":
        settings["EXPLORATION_TEMPERATURE_V1"] = args.temperature
    current.policy = ServingPolicy(current.settings.model_copy(update=settings))
    recommendations.record = (lambda *_: {}) if policy == "before" else record


def measure(client, requests: list[bytes], times: list[tuple[float, float]]) -> None:
    """Per request: (wall time, CPU time of this thread). Flask's test client handles the
    request in the calling thread, so the second is the request's own CPU, without the deferred
    writer's (another thread) that the wall time also pays for through the GIL."""
    for request in requests:
        started, started_cpu = time.perf_counter(), time.thread_time()
        response = client.post("/recommendations", data=request, content_type="application/json")
        times.append((time.perf_counter() - started, time.thread_time() - started_cpu))
        assert response.status_code == 200 and response.get_json()["engine_version"] == "Popularity"


Times = dict[str, list[list[tuple[float, float]]]]  # policy -> rounds -> (wall, cpu) per request
METRICS = {"wall": 0, "cpu": 1}


def run(app, args) -> Times:
    """Requests interleaved: each request is sent once under every policy, the policies in a
    new random order each time, so that the shared machine's drift falls on all of them alike;
    a round's medians are compared policy by policy."""
    client = app.test_client()
    requests = bodies(args)
    per_round = args.requests // args.rounds
    rng = np.random.default_rng(args.seed)
    times: Times = {policy: [] for policy in POLICIES}
    for policy in POLICIES:  # warm-up: caches, the prefix table, the writer
        use(policy, args)
        measure(client, requests[:50], [])
    for _ in range(args.rounds):
        blocks: dict[str, list[tuple[float, float]]] = {policy: [] for policy in POLICIES}
        for pick in rng.integers(len(requests), size=per_round):
            for policy in rng.permutation(POLICIES):
                use(str(policy), args)
                measure(client, [requests[pick]], blocks[str(policy)])
        for policy, block in blocks.items():
            times[policy].append(block)
    return times


def summary(times: Times, metric: str) -> dict[str, dict]:
    """Per policy: p50 and p95 over every request, and the mean over rounds of the round's
    median minus `before`'s in the same round, with its 95% t interval (ms)."""
    column = METRICS[metric]
    medians = {
        policy: np.array([np.median(np.array(block)[:, column]) for block in blocks]) * 1e3
        for policy, blocks in times.items()
    }
    result = {}
    for policy, blocks in times.items():
        every = np.concatenate([np.array(block)[:, column] for block in blocks]) * 1e3
        difference = medians[policy] - medians["before"]
        half = stats.t.ppf(0.975, len(difference) - 1) * stats.sem(difference)
        p50, p95 = np.percentile(every, [50, 95])
        result[policy] = {
            "requests": len(every),
            "p50": float(p50),
            "p95": float(p95),
            "round_medians": medians[policy].tolist(),
            "minus_before": None
            if policy == "before"
            else [
                float(difference.mean()),
                float(difference.mean() - half),
                float(difference.mean() + half),
            ],
        }
    return result


def report(summaries: dict[str, dict[str, dict]]) -> None:
    for metric, rows in summaries.items():
        print(f"\n{metric}: request {'wall time' if metric == 'wall' else 'thread CPU time'}")
        print(
            "| Policy | requests | p50 ms | p95 ms | p50 - before, ms (95% interval over rounds) |"
        )
        print("|---|---:|---:|---:|---:|")
        for policy, row in rows.items():
            spread = "-"
            if row["minus_before"] is not None:
                mean, low, high = row["minus_before"]
                spread = f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"
            print(
                f"| {policy} | {row['requests']} | {row['p50']:.3f} | {row['p95']:.3f} | {spread} |"
            )


def pieces(args) -> dict[str, float]:
    """Each piece in isolation, microseconds per call (best of 7). A draw gets a new seed per
    call, as served answers do (one seed always takes the same branch of epsilon-greedy)."""
    import itertools

    import bson

    from recommender.engines.base.engine import EngineResult, Scored, same, seeded
    from recommender.engines.random.engine import RandomEngine
    from recommender.evaluation.exploration import Exploration
    from recommender.services.serving_policy import ServingPolicy, record

    rng = np.random.default_rng(args.seed)
    scored = Scored(
        np.arange(args.candidates, dtype=np.int64), rng.random(args.candidates), same("l", "s")
    )
    result = EngineResult([1, 2, 3], [0.3, 0.2, 0.1], ["a"] * 3, ["b"] * 3)
    engine = RandomEngine()
    seeds = itertools.count(12345)
    epsilon = Exploration("epsilon", 0.05)
    plackett_luce = Exploration("plackett_luce", temperature=args.temperature)
    drawn = ServingPolicy.draw(scored, 3, plackett_luce, 1, rng)
    stored = stored_document(args.candidates)
    recorded = {**stored, **record("X", engine, drawn, None)}
    cases = {
        "greedy answer (`Scored.top`, what `off` does)": lambda: scored.top(3),
        "a generator set to a seed": lambda: seeded(rng, next(seeds)),
        "epsilon 0.05 answer (`ServingPolicy.draw`)": lambda: ServingPolicy.draw(
            scored, 3, epsilon, next(seeds), rng
        ),
        f"Plackett-Luce T={args.temperature}, pool 20 answer": lambda: ServingPolicy.draw(
            scored, 3, plackett_luce, next(seeds), rng
        ),
        "`record` (policy + propensities)": lambda: record("X", engine, result, None),
        "BSON of the stored answer without them (pymongo's encoder)": lambda: bson.encode(stored),
        "BSON of the stored answer with them": lambda: bson.encode(recorded),
    }
    print(f"\n| Piece ({args.candidates:,} scored candidates, K = 3) | us per call |")
    print("|---|---:|")
    timings = {}
    for name, call in cases.items():
        timings[name] = min(timeit.repeat(call, number=2000, repeat=7)) / 2000 * 1e6
        print(f"| {name} | {timings[name]:.1f} |")
    return timings


def stored_document(candidates: int) -> dict:
    """A stored top-K answer to an anonymous request as the writer hands it to the driver,
    before the policy fields (what a real MongoDB's client encodes)."""
    import datetime as dt

    return {
        "user": None,
        "aai_uid": None,
        "unique_id": str(uuid.UUID(int=1)),
        "client_id": "marketplace",
        "timestamp": dt.datetime(2024, 2, 21, 14, 19, 43),
        "visit_id": str(uuid.UUID(int=2)),
        "page_id": "/services",
        "panel_id": "v1",
        "engine_version": "Popularity",
        "services": [1, 2, 3],
        "scores": [0.3, 0.2, 0.1],
        "candidates": list(range(candidates)),
        "search_data": {},
        "processed": False,
        "served_at": dt.datetime(2024, 2, 21, 14, 19, 43),
        "experiment": None,
        "variant": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=4000, help="per policy")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--store",
        choices=("mongomock", "driver"),
        default="mongomock",
        help="where the writer's documents go: the in-process mongomock store, or pymongo's"
        " BSON encoder only (a real MongoDB client's in-process cost)",
    )
    parser.add_argument("--json", help="write every figure, per round, to this file")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout)
    app = build(args)
    times = run(app, args)
    summaries = {metric: summary(times, metric) for metric in METRICS}
    report(summaries)
    timings = pieces(args)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print("\nload after:", load)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "load_after": load,
                    "policies": summaries,
                    "pieces_us": timings,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
