"""RL benchmark on the synthetic world: true expected reward, the RL simulator's estimate and
off-policy estimates (IPS, SNIPS, DR) per policy, per catalogue size, over seeds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rl.py [--sizes small,medium,large]
        [--seeds 42,1,2,3,4] [--jobs 2] [--json docs/benchmarks/rl.json]

Per size and seed, in its own subprocess (a fresh in-process mongomock store):
1. A synthetic marketplace (`generate_marketplace`) and its hidden world
   (`recommender/synthetic/world.py`); the dump is loaded as `/update` loads it.
2. The world's logging policy (the interest-overlap rule explored by Plackett-Luce over every
   candidate, propensities recorded) serves the logged sessions, stored as real traffic.
3. The training stages run as `/update` runs them (ae, embedding, ncf, popularity, rl), RL on
   the stored sessions (RL_MIN_REAL_SARSES=1: they are the real traffic here). Quality gates
   still run and their verdicts are recorded, but a rejected model is served anyway: the
   benchmark measures every policy, not only those a gate would let through.
4. Policies: RL, NCF, Popularity and InterestRule answer through their serving engines (the
   code `/recommendations` runs); Random draws K candidates uniformly.
   All on a held-out log: the same logging policy on the month after the training log, never
   stored nor trained on, logged-in visitors only (RL and NCF serve only them):
   - true: the world's exact expected reward E[sum_j r_j] (`World.expected_reward`) of the
     policy's slates, averaged over those requests (95% interval over requests). It is an
     expectation under the hidden model, not the realised outcome of the logged sessions, so
     no engine is scored on the noise it was trained on;
   - simulator: the RL pipeline's held-out estimate of each engine it compares (its own reward
     scale, whatever the pipeline on this branch computes), read from the stage's metrics;
   - IPS, SNIPS, DR (recommender/evaluation/offpolicy.py, bootstrap 95% intervals): from the
     held-out sessions, against the policy's slates on those requests, so that their error
     is measured against `true` on exactly the same requests. DR's reward model is the
     position-wise logistic model on what the logger knows (shared declared interests,
     popularity).
The parent aggregates per size and policy: mean over seeds with a 95% t interval, and checks the
goals (RL >= 1.10x the best of NCF, Popularity, Random and InterestRule on true reward, every
size; every off-policy estimate within 10% of the true reward on the largest size).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# name -> (users, services, logged sessions)
SIZES = {
    "small": (1000, 200, 4000),
    "medium": (2000, 400, 6000),
    "large": (3000, 600, 8000),
}
DEFAULT_SEEDS = "42,1,2,3,4"
STAGES = ("ae", "embedding", "ncf", "popularity", "rl")
POLICIES = ("RL", "NCF", "Popularity", "Random", "InterestRule")
BASELINES = ("NCF", "Popularity", "Random", "InterestRule")
ESTIMATORS = ("ips", "snips", "dr")
RL_GOAL = 1.10
OPE_GOAL = 0.10
# The RL pipeline's names for the engines it compares -> ours.
SIMULATOR_NAMES = {
    "rl": "RL",
    "ncf": "NCF",
    "popularity": "Popularity",
    "random": "Random",
    "rule": "InterestRule",
    "interestrule": "InterestRule",
    "interest_rule": "InterestRule",
}


def interval(values: np.ndarray) -> dict:
    """Mean and 95% normal interval of a mean over many values (requests)."""
    values = np.asarray(values, dtype=np.float64)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    mean = float(values.mean())
    return {"value": mean, "ci": [mean - half, mean + half], "n": len(values)}


def t_interval(values: list[float]) -> dict:
    """Mean and 95% t interval over seeds."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(values):
        return {"mean": None, "ci": [None, None], "seeds": 0}
    mean = float(values.mean())
    if len(values) < 2:
        return {"mean": mean, "ci": [mean, mean], "seeds": 1}
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return {"mean": mean, "ci": [mean - half, mean + half], "seeds": len(values)}


# --- one run (subprocess) --------------------------------------------------------------


def record_gates(verdicts: dict[str, str]) -> None:
    """Let every trained model through, recording what its gate said: the benchmark measures
    each policy, rejected or not."""
    import importlib

    from recommender.engines.base.pipeline import Pipeline

    for module_name in ("recommender.engines.ncf.pipeline", "recommender.engines.rl.pipeline"):
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Pipeline) and value is not Pipeline:
                if value.__module__ != module_name or "validate_model" not in vars(value):
                    continue
                value.validate_model = _recorded(value.validate_model, verdicts)


def _recorded(validate, verdicts: dict[str, str]):
    from recommender.engines.base.pipeline import ModelValidationError

    def validate_model(self, *args, **kwargs):
        try:
            validate(self, *args, **kwargs)
            verdicts[self.name] = "promoted"
        except ModelValidationError as error:
            verdicts[self.name] = f"rejected: {error}"

    return validate_model


def rl_training_choices() -> dict:
    """What the last RL training chose: its starting direction (prior.py) and, per panel, the
    settings, each actor-critic's kept epoch (0: the untrained prior) and whether the rule's
    own ranking was kept instead."""
    from recommender.models.ops import PipelineMetadata

    metadata = PipelineMetadata.objects(pipeline="RL").order_by("-id").first()
    train = next((step.details for step in metadata.steps if step.name == "train"), None)
    if not train:
        return {}
    panels = {panel: train[panel]["chosen"] for panel in ("v1", "v2") if panel in train}
    return {"prior": train.get("prior"), **panels}


def simulator_estimates(metrics: dict) -> dict[str, float]:
    """Per policy, the RL pipeline's held-out reward estimate, panels weighted by sessions."""
    totals: dict[str, list[float]] = {}
    for panel in ("v1", "v2"):
        numbers = metrics.get(panel)
        if not isinstance(numbers, dict):
            continue
        weight = float(numbers.get("sessions", 1) or 0)
        for name, entry in numbers.items():
            ours = SIMULATOR_NAMES.get(name.lower())
            if not ours or not isinstance(entry, dict):
                continue
            # The simulator's own figure; "reward" is whatever evidence the gate used.
            simulated = entry.get("simulated")
            value = simulated.get("value") if isinstance(simulated, dict) else entry.get("reward")
            if value is not None:
                total = totals.setdefault(ours, [0.0, 0.0])
                total[0] += weight * float(value)
                total[1] += weight
    return {name: s / w for name, (s, w) in totals.items() if w > 0}


def engine_slates(name: str, world, requests) -> list[list[int]] | None:
    """The engine's answers to the requests, as `/recommendations` computes them."""
    from recommender.engines.base.engine import RecommendationContext
    from recommender.services.runtime import runtime

    served = runtime().engines.find(name)
    if served is None or not served.engine.is_ready()[0]:
        return None
    slates = []
    for request in requests:
        user = world.users[request.user]
        context = RecommendationContext(
            candidates=request.candidates,
            panel_id=request.panel,
            user_id=user["id"],
            search_data=request.search,
            accessed_services=tuple(user["accessed_services"]),
            unique_id=request.unique_id,
            timestamp=request.moment,
        )
        slates.append(served.engine.answer(context, request.k, ranking=False).services)
    return slates


def random_slates(requests, seed: int) -> list[list[int]]:
    rng = np.random.default_rng([seed, 99])
    return [rng.choice(r.candidates, size=r.k, replace=False).tolist() for r in requests]


def logger_features(world, request) -> np.ndarray:
    """[candidates, 2] what the logging policy knows of each candidate: shared declared
    interests (capped) and log-popularity in [0, 1)."""
    scores = world.logging_scores(request)
    shared = np.floor(scores)
    return np.stack([np.minimum(shared, 3.0) / 3.0, scores - shared], axis=1)


def off_policy(world, logged, slates: list[list[int]], uniform: bool, seed: int) -> dict:
    """IPS, SNIPS and DR of a target policy from the logged sessions."""
    from recommender.evaluation.offpolicy import (
        LoggedSlates,
        dr,
        fit_position_reward_model,
        ips,
        snips,
        target_expected_reward,
    )

    requests, records = logged.requests, logged.recommendations
    n, width = len(requests), logged.position_rewards.shape[1]
    logging = np.full((n, width), np.nan)
    target = np.full((n, width), np.nan)
    features = np.zeros((n, width, 2))
    candidate_features = []
    for i, (request, record, slate) in enumerate(zip(requests, records, slates, strict=True)):
        shown = world.positions(request, record["services"])
        k = len(shown)
        logging[i, :k] = record["propensities"]
        if uniform:
            target[i, :k] = 1.0 / len(request.candidates)
        else:
            target[i, :k] = [
                float(j < len(slate) and slate[j] == sid)
                for j, sid in enumerate(record["services"])
            ]
        own = logger_features(world, request)
        candidate_features.append(own)
        features[i, :k] = own[shown]
    model = fit_position_reward_model(features, logged.position_rewards)
    predicted_logged = np.where(np.isnan(logged.position_rewards), np.nan, model.predict(features))
    predicted_target = np.full((n, width), np.nan)
    for i, (request, slate) in enumerate(zip(requests, slates, strict=True)):
        n_candidates, k = len(request.rows), request.k
        # Every position's prediction for every candidate; a K=2 panel reads the first two.
        shape = (n_candidates, width, candidate_features[i].shape[1])
        predictions = model.predict(np.broadcast_to(candidate_features[i][:, None, :], shape))
        predictions = predictions[:, :k]
        marginals = np.zeros((n_candidates, k))
        if uniform:
            marginals[:] = 1.0 / n_candidates
        else:
            positions = world.positions(request, slate)
            marginals[positions, np.arange(len(positions))] = 1.0
        predicted_target[i, :k] = target_expected_reward(marginals, predictions)
    data = LoggedSlates(
        logged.position_rewards, logging, target, predicted_logged, predicted_target
    )
    return {
        "ips": ips(data, rng=seed).as_dict(),
        "snips": snips(data, rng=seed).as_dict(),
        "dr": dr(data, rng=seed).as_dict(),
    }


def run_one(size: str, seed: int) -> dict:
    users, services, sessions = SIZES[size]
    from recommender import create_app
    from recommender.services.update import train_stage
    from recommender.synthetic import World, generate_marketplace
    from recommender.synthetic.world import DEFAULT_START, SPAN
    from recommender.synthetic.writer import write_marketplace, write_sessions

    app = create_app("testing", MONGODB_HOST="mongomock", RL_MIN_REAL_SARSES=1)
    result: dict = {"size": size, "users": users, "services": services, "seed": seed}
    timings: dict[str, float] = {}
    with app.app_context():
        started = time.perf_counter()
        dump = generate_marketplace(users=users, services=services, seed=seed)
        write_marketplace(dump)
        world = World(dump)
        logged = world.log(world.requests(sessions, seed), seed)
        write_sessions(logged.recommendations, logged.actions)
        timings["data_s"] = time.perf_counter() - started
        result["logged"] = {
            "sessions": len(logged.recommendations),
            "actions": len(logged.actions),
            "mean_reward": float(logged.rewards.mean()),
        }
        verdicts: dict[str, str] = {}
        record_gates(verdicts)
        stages = {}
        for name in STAGES:
            started = time.perf_counter()
            outcome = train_stage(name, seed, progress=False)
            timings[f"train_{name}_s"] = time.perf_counter() - started
            stages[name] = {"status": outcome.status, "reason": outcome.reason}
            if name == "rl":
                result["simulator"] = simulator_estimates(outcome.metrics or {})
                result["rl_metrics"] = outcome.metrics
                result["rl_training"] = rl_training_choices()
        result["stages"], result["gates"] = stages, verdicts
        # A held-out log: the next month, same logging policy, never stored nor trained on, so
        # that no target policy depends on the outcomes its estimates reweight.
        held = world.log(world.requests(sessions, seed + 1, start=DEFAULT_START + SPAN), seed + 1)
        members = [i for i, r in enumerate(held.requests) if r.user is not None]
        logged_in = type(held)(
            [held.recommendations[i] for i in members],
            [],
            [held.requests[i] for i in members],
            held.position_rewards[members],
        )
        policies: dict[str, dict] = {}
        requests = logged_in.requests
        for name in POLICIES:
            started = time.perf_counter()
            if name == "Random":
                slates = random_slates(requests, seed)
            else:
                slates = engine_slates(name, world, requests)
            if slates is None:
                policies[name] = {"available": False}
                continue
            timings[f"slates_{name}_s"] = time.perf_counter() - started
            policies[name] = {
                "available": True,
                "true": interval(world.expected_reward(requests, slates)),
                **off_policy(world, logged_in, slates, name == "Random", seed),
            }
        oracle = [world.best_slate(r).tolist() for r in requests]
        result["oracle_true"] = interval(world.expected_reward(requests, oracle))
        result["policies"] = policies
    result["timings"] = timings
    return result


# --- the parent ------------------------------------------------------------------------


def aggregate(runs: list[dict]) -> dict:
    summary: dict = {}
    for size in dict.fromkeys(r["size"] for r in runs):
        mine = [r for r in runs if r["size"] == size]
        per_policy = {}
        for name in POLICIES:
            available = [r["policies"][name] for r in mine if r["policies"][name]["available"]]
            entry = {
                "true": t_interval([p["true"]["value"] for p in available]),
                "simulator": t_interval([r.get("simulator", {}).get(name) for r in mine]),
            }
            for estimator in ESTIMATORS:
                entry[estimator] = t_interval([p[estimator]["value"] for p in available])
                errors = [
                    abs(p[estimator]["value"] - p["true"]["value"]) / p["true"]["value"]
                    for p in available
                ]
                entry[f"{estimator}_relative_error"] = t_interval(errors)
            per_policy[name] = entry
        summary[size] = {
            "policies": per_policy,
            "oracle_true": t_interval([r["oracle_true"]["value"] for r in mine]),
        }
    return summary


def goals(summary: dict) -> dict:
    rl_goal = {}
    for size, numbers in summary.items():
        policies = numbers["policies"]
        rl = policies["RL"]["true"]["mean"]
        best_name = max(BASELINES, key=lambda n: policies[n]["true"]["mean"] or -1.0)
        best = policies[best_name]["true"]["mean"]
        ratio = None if rl is None or not best else rl / best
        rl_goal[size] = {
            "rl": rl,
            "best_baseline": best_name,
            "best": best,
            "ratio": ratio,
            "met": bool(ratio is not None and ratio >= RL_GOAL),
        }
    largest = list(summary)[-1]
    ope = {}
    for name, entry in summary[largest]["policies"].items():
        for estimator in ESTIMATORS:
            error = entry[f"{estimator}_relative_error"]["mean"]
            estimate, truth = entry[estimator]["mean"], entry["true"]["mean"]
            mean_error = None if estimate is None or not truth else abs(estimate - truth) / truth
            ope[f"{name}/{estimator}"] = {
                "relative_error_of_means": mean_error,
                "mean_per_seed_relative_error": error,
                "met": bool(mean_error is not None and mean_error <= OPE_GOAL),
            }
    return {"rl_vs_best_baseline": rl_goal, "ope_within_10pct_on_" + largest: ope}


def fmt(entry: dict, digits: int = 4) -> str:
    if entry["mean"] is None:
        return "n/a"
    low, high = entry["ci"]
    return f"{entry['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def print_tables(summary: dict, goal: dict) -> None:
    print("| size | policy | true | simulator | IPS | SNIPS | DR |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for size, numbers in summary.items():
        for name, e in numbers["policies"].items():
            print(
                f"| {size} | {name} | {fmt(e['true'])} | {fmt(e['simulator'])} | {fmt(e['ips'])}"
                f" | {fmt(e['snips'])} | {fmt(e['dr'])} |"
            )
        print(f"| {size} | (oracle) | {fmt(numbers['oracle_true'])} | | | | |")
    print("\n| size | RL true | best baseline | its true | RL / best | goal >= 1.10 |")
    print("|---|---:|---|---:|---:|---|")
    for size, g in goal["rl_vs_best_baseline"].items():
        ratio = "n/a" if g["ratio"] is None else f"{g['ratio']:.3f}"
        print(
            f"| {size} | {g['rl'] or 0:.4f} | {g['best_baseline']} | {g['best']:.4f} | {ratio} "
            f"| {'met' if g['met'] else 'not met'} |"
        )
    (key,) = [key for key in goal if key.startswith("ope_")]
    print(f"\n| {key}: policy / estimator | error of seed means | mean per-seed error | goal |")
    print("|---|---:|---:|---|")
    for name, g in goal[key].items():
        error, per_seed = g["relative_error_of_means"], g["mean_per_seed_relative_error"]
        print(
            f"| {name} | {'n/a' if error is None else f'{100 * error:.1f} %'} "
            f"| {'n/a' if per_seed is None else f'{100 * per_seed:.1f} %'} "
            f"| {'met' if g['met'] else 'not met'} |"
        )


def run_subprocess(size: str, seed: str) -> dict:
    """One size and seed in a fresh process (its own in-process store)."""
    # One thread: on a shared machine OpenMP workers spin waiting for each other.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [sys.executable, __file__, "--one", f"{size}:{seed}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{size} seed {seed} failed:\n{done.stderr[-3000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{size} seed {seed}: {run['timings']}", file=sys.stderr, flush=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--seeds", default=DEFAULT_SEEDS)
    parser.add_argument("--json", default=str(ROOT / "docs" / "benchmarks" / "rl.json"))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (subprocesses)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: "size:seed", prints JSON
    parser.add_argument("--table", action="store_true", help="print the tables of --json only")
    args = parser.parse_args()
    if args.table:
        stored = json.loads(Path(args.json).read_text())
        print_tables(stored["summary"], stored["goals"])
        return
    if args.one:
        size, seed = args.one.split(":")
        print(json.dumps(run_one(size, int(seed)), default=float))
        return
    started = time.perf_counter()
    jobs = [(size, seed) for size in args.sizes.split(",") for seed in args.seeds.split(",")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda job: run_subprocess(*job), jobs))
    summary = aggregate(runs)
    goal = goals(summary)
    machine = {
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "wall_s": time.perf_counter() - started,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {"machine": machine, "sizes": SIZES, "summary": summary, "goals": goal, "runs": runs},
            indent=1,
            default=float,
        )
        + "\n"
    )
    print_tables(summary, goal)


if __name__ == "__main__":
    main()
