"""Training benchmark: time and peak memory per training stage, per catalogue size.

    .venv/bin/python benchmarks/training.py [--sizes 10000x1000,100000x10000]
        [--stages ae,embedding,ncf,ease,ials,hybrid,champion,rl,popularity] [--device cpu|cuda]
        [--seed 42]

Each size (USERSxSERVICES) runs in its own subprocess, so peak memory (ru_maxrss) is that size's
alone. The subprocess fills an in-process mongomock store with a synthetic catalogue (bulk
inserts), then runs the named stages of the training chain in order, as `/update` does (inside
one `store.snapshot`: stages that share a catalogue read reuse the first stage's).

Per stage, database time is split from computation and named by store:
  - catalogue read: the pipeline's extract step (mongomock scan + projection; near zero for a
    stage whose reads an earlier stage of the chain already made),
  - model read / model write: model_store.load / save_candidate + promote (GridFS on mongomock).
Computation is the rest of the run. Mongomock is far slower than a MongoDB server, which is why
the store times are reported apart. The default `--stages` is the whole chain.
RL (`--stages ae,embedding,rl`) trains on RL_SYNTHETIC_SESSIONS (default 20,000) synthetic
sessions, as it does when too few real SARS exist; its held-out evaluation is printed after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_SIZES = "10000x1000,100000x10000"
# The whole `/update` chain with the default ENGINES, in its order.
DEFAULT_STAGES = "ae,embedding,ncf,ease,ials,hybrid,champion,rl,popularity"


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synthetic_catalogue(users: int, services: int, seed: int) -> tuple[list[dict], list[dict]]:
    """User and service documents (`_id` keyed) of a synthetic marketplace."""
    from recommender.synthetic import generate_marketplace

    dump = generate_marketplace(users=users, services=services, seed=seed)

    def docs(rows: list[dict]) -> list[dict]:
        return [{"_id": row["id"], **{k: v for k, v in row.items() if k != "id"}} for row in rows]

    return docs(dump["users"]), docs(dump["services"])


class StoreTimer:
    """Wraps model_store's database calls to time them (the pipelines call them by module)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def install(self) -> None:
        from recommender.model_store import versions as model_store

        for function, label in (
            ("load", "model read (GridFS/mongomock)"),
            ("save_candidate", "model write (GridFS/mongomock)"),
            ("promote", "model write (GridFS/mongomock)"),
        ):
            setattr(model_store, function, self._timed(getattr(model_store, function), label))

    def _timed(self, function, label: str):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed

    def take(self) -> dict[str, float]:
        taken, self.seconds = dict(self.seconds), defaultdict(float)
        return taken


def run_size(users: int, services: int, stages: list[str], seed: int, device: str) -> dict:
    os.environ["TRAINING_DEVICE"] = device
    from recommender import create_app
    from recommender.engines.base.pipeline import STEPS
    from recommender.engines.spec import resolve
    from recommender.models.marketplace import Service, User
    from recommender.models.ops import PipelineMetadata
    from recommender.services.runtime import runtime
    from recommender.services.update import train_stage
    from recommender.store import get_db
    from recommender.store.snapshot import snapshot

    app = create_app("testing", MONGODB_HOST="mongomock", TRAINING_DEVICE=device)
    result: dict = {"users": users, "services": services, "device": device, "stages": {}}
    with app.app_context():
        started = time.perf_counter()
        user_docs, service_docs = synthetic_catalogue(users, services, seed)
        result["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        get_db()[User._get_collection_name()].insert_many(user_docs)
        get_db()[Service._get_collection_name()].insert_many(service_docs)
        result["insert_s (mongomock bulk)"] = time.perf_counter() - started
        del user_docs, service_docs
        result["rss_after_setup_mib"] = max_rss_mib()
        timer = StoreTimer()
        timer.install()
        with snapshot():  # as train_chain runs them: one catalogue read per chain
            for name in stages:
                resolve(runtime().engines.stage(name).train)  # imports outside the timing
                started, cpu_started = time.perf_counter(), time.process_time()
                outcome = train_stage(name, seed, progress=False)
                total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                metadata = PipelineMetadata.objects(pipeline=outcome.pipeline).first()
                steps = {step.name: step.duration_s or 0.0 for step in metadata.steps}
                store = timer.take()
                store["catalogue read (mongomock, extract step)"] = steps.get("extract", 0.0)
                result["stages"][name] = {
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "total_s": total,
                    # all threads: with the machine shared, wall time includes waiting
                    "cpu_s": cpu,
                    "compute_s": total - sum(store.values()),
                    "store_s": store,
                    "steps_s": steps,
                    "train_details": scalars(metadata.steps[STEPS.index("train")].details),
                    "evaluate_details": {s.name: s.details for s in metadata.steps}.get(
                        "evaluate", {}
                    ),
                    "peak_rss_mib": max_rss_mib(),
                }
    result["peak_rss_mib"] = max_rss_mib()
    return result


def scalars(details: dict) -> dict:
    """`details` without lists (loss curves), for a readable record."""
    return {
        key: scalars(value) if isinstance(value, dict) else value
        for key, value in details.items()
        if not isinstance(value, list)
    }


def print_table(results: list[dict]) -> None:
    print(
        "| users | services | stage | status | compute s | total s | total cpu s"
        " | catalogue read s | model read s | model write s | peak RSS MiB (store incl.) |"
    )
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for name, s in r["stages"].items():
            store = s["store_s"]
            print(
                f"| {r['users']:,} | {r['services']:,} | {name} | {s['status']} "
                f"| {s['compute_s']:.1f} | {s['total_s']:.1f} | {s['cpu_s']:.1f} "
                f"| {store.get('catalogue read (mongomock, extract step)', 0):.1f} "
                f"| {store.get('model read (GridFS/mongomock)', 0):.2f} "
                f"| {store.get('model write (GridFS/mongomock)', 0):.2f} "
                f"| {s['peak_rss_mib']:.0f} |"
            )
        chain = sum(s["total_s"] for s in r["stages"].values())
        print(f"| {r['users']:,} | {r['services']:,} | **chain** | | | {chain:.1f} | | | | | |")
        print(
            f"|  |  | (setup: generate {r['generate_s']:.1f} s, "
            f"bulk insert {r['insert_s (mongomock bulk)']:.1f} s, "
            f"RSS after setup {r['rss_after_setup_mib']:.0f} MiB) | | | | | | | | |"
        )


def print_rl(results: list[dict]) -> None:
    """The RL stage's held-out evaluation (simulated reward and hr@K per engine and panel)."""
    rows = [(r, r["stages"]["rl"]) for r in results if "rl" in r["stages"]]
    if not rows:
        return
    print("\n| users | services | panel | train s | engine | reward | hr@K |")
    print("|---:|---:|---|---:|---|---:|---:|")
    for r, stage in rows:
        for panel, details in stage["evaluate_details"].items():
            if not isinstance(details, dict):
                continue
            seconds = stage["train_details"].get(panel, {}).get("seconds", 0.0)
            for engine, numbers in details.items():
                if isinstance(numbers, dict) and "reward" in numbers:
                    hits = (v for key, v in numbers.items() if key.startswith("hr@"))
                    hr = next(hits, float("nan"))
                    print(
                        f"| {r['users']:,} | {r['services']:,} | {panel} | {seconds:.1f} "
                        f"| {engine} | {numbers['reward']:.4f} | {hr:.3f} |"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="USERSxSERVICES, comma separated")
    parser.add_argument("--stages", default=DEFAULT_STAGES, help="training chain stage names")
    parser.add_argument("--device", default=os.environ.get("TRAINING_DEVICE", "cpu"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = parser.parse_args()
    stages = args.stages.split(",")
    if args.one:
        users, services = (int(x) for x in args.one.split("x"))
        print(json.dumps(run_size(users, services, stages, args.seed, args.device)))
        return
    results = []
    for size in args.sizes.split(","):
        command = [sys.executable, __file__, "--one", size, "--stages", args.stages]
        command += ["--seed", str(args.seed), "--device", args.device]
        # One thread by default: on a shared machine OpenMP workers spin waiting for each other
        # (an Adam step took 20x longer with 2 threads on 2 busy cores).
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            sys.exit(f"size {size} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1], indent=1), file=sys.stderr)
    print_table(results)
    print_rl(results)


if __name__ == "__main__":
    main()
