"""Serving policy benchmark: what recording propensities and exploring add to the server time of
`POST /recommendations` at 1,000 candidates.

    .venv/bin/python benchmarks/policy.py [--services 2000] [--users 500] [--candidates 1000]
        [--requests 4000] [--rounds 20] [--temperature 0.1] [--seed 42]

One app in this process on the in-process (mongomock) store, seeded with a synthetic marketplace
(`seed_database`) and a trained Popularity; anonymous Marketplace-shaped requests with
CANDIDATES candidates each (a seeded draw of recommendable services), sent through Flask's test
client with the deferred writer storing every answer, as in production. Four policies, swapped
on the same app between blocks of requests (`--rounds` rounds, each policy once per round in a
shuffled order, so that drift of the shared machine and of the growing store falls on all):

- `before`: exploration off and no policy or propensities stored (the work before they were);
- `off`: exploration off, the policy and propensity 1 per position stored;
- `epsilon`: epsilon-greedy 0.05 (the default);
- `plackett_luce`: Plackett-Luce at `--temperature` over the best 20.

Per policy: p50 / p95 of the request time over all requests; per round the median's difference
from `before`, and its mean with a 95% interval over the rounds. Then the pieces in isolation
(timeit, best of 7): the greedy answer from 1,000 scored candidates, the epsilon-greedy and
Plackett-Luce answers (`ServingPolicy.draw`: generator, `choose`, answer), `record`.
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
    return app


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


def measure(client, requests: list[bytes], times: list[float]) -> None:
    for request in requests:
        started = time.perf_counter()
        response = client.post("/recommendations", data=request, content_type="application/json")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200 and response.get_json()["engine_version"] == "Popularity"


def run(app, args) -> dict[str, list[list[float]]]:
    client = app.test_client()
    requests = bodies(args)
    per_round = args.requests // args.rounds
    rng = np.random.default_rng(args.seed)
    times: dict[str, list[list[float]]] = {policy: [] for policy in POLICIES}
    for policy in POLICIES:  # warm-up: caches, the prefix table, the writer
        use(policy, args)
        measure(client, requests[:50], [])
    for _ in range(args.rounds):
        for policy in rng.permutation(POLICIES):
            use(str(policy), args)
            block: list[float] = []
            picks = rng.integers(len(requests), size=per_round)
            measure(client, [requests[i] for i in picks], block)
            times[str(policy)].append(block)
    return times


def report(times: dict[str, list[list[float]]]) -> None:
    print("\n| Policy | requests | p50 ms | p95 ms | p50 - before, ms (95% interval over rounds) |")
    print("|---|---:|---:|---:|---:|")
    before = np.array([np.median(block) for block in times["before"]])
    for policy, blocks in times.items():
        every = np.concatenate(blocks) * 1e3
        medians = np.array([np.median(block) for block in blocks])
        difference = (medians - before) * 1e3
        half = stats.t.ppf(0.975, len(difference) - 1) * stats.sem(difference)
        spread = (
            "-"
            if policy == "before"
            else f"{difference.mean():+.3f} [{difference.mean() - half:+.3f}, "
            f"{difference.mean() + half:+.3f}]"
        )
        p50, p95 = np.percentile(every, [50, 95])
        print(f"| {policy} | {len(every)} | {p50:.3f} | {p95:.3f} | {spread} |")


def pieces(args) -> None:
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
    epsilon = Exploration("epsilon", 0.05)
    plackett_luce = Exploration("plackett_luce", temperature=args.temperature)
    cases = {
        "greedy answer (`Scored.top`, what `off` does)": lambda: scored.top(3),
        "a generator set to a seed": lambda: seeded(rng, 12345),
        "epsilon 0.05 answer (`ServingPolicy.draw`)": lambda: ServingPolicy.draw(
            scored, 3, epsilon, 12345, rng
        ),
        f"Plackett-Luce T={args.temperature}, pool 20 answer": lambda: ServingPolicy.draw(
            scored, 3, plackett_luce, 12345, rng
        ),
        "`record` (policy + propensities)": lambda: record("X", engine, result, None),
    }
    print(f"\n| Piece ({args.candidates:,} scored candidates, K = 3) | us per call |")
    print("|---|---:|")
    for name, call in cases.items():
        seconds = min(timeit.repeat(call, number=2000, repeat=7)) / 2000
        print(f"| {name} | {seconds * 1e6:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=4000, help="per policy")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout)
    app = build(args)
    report(run(app, args))
    pieces(args)
    print("\nload after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout)


if __name__ == "__main__":
    main()
