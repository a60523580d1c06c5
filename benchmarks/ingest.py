"""Ingest benchmark: synthetic dumps generated, validated and loaded on the mongomock store.

    .venv/bin/python benchmarks/ingest.py [--sizes 1000x500,20000x5000,100000x10000] [--seed 42]

Per size (USERSxSERVICES), in its own subprocess so peak memory (ru_maxrss) is that size's:
  - generate: `generate_marketplace` (not part of ingestion, timed apart),
  - validate, references, load: the three steps of loading a dump (`validate_dump`,
    `drop_dangling_references`, `load_catalogue`: staging collections, renames, stamp),
  - POST /update: the whole path end to end through the API with an empty training chain:
    JSON parsing, validation, the dump kept in GridFS, then the (eager) task decoding it,
    validating it again, cleaning references and loading it atomically.
Wall-clock seconds; the CPU seconds of the ingestion steps and of the POST are shown too,
since on a shared machine wall time includes waiting for a core. Goal: POST /update of 20,000
users and 5,000 services in at most 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_SIZES = "1000x500,20000x5000,100000x10000"
GOAL = {"users": 20_000, "services": 5_000, "seconds": 15.0}
COLUMNS = [
    ("users", "users", "{:>7,}"),
    ("services", "services", "{:>8,}"),
    ("dump_mib", "dump MiB", "{:>8.1f}"),
    ("generate", "generate s", "{:>10.2f}"),
    ("validate", "validate s", "{:>10.2f}"),
    ("references", "refs s", "{:>6.2f}"),
    ("load", "load s", "{:>6.2f}"),
    ("ingest", "v+r+l s", "{:>7.2f}"),
    ("ingest_cpu", "v+r+l cpu s", "{:>11.2f}"),
    ("post", "POST /update s", "{:>14.2f}"),
    ("post_cpu", "POST cpu s", "{:>10.2f}"),
    ("peak_mib", "peak MiB", "{:>8.0f}"),
]


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def measure(users: int, services: int, seed: int) -> dict:
    """One size, in this process: each step's seconds on a fresh mongomock store."""
    from recommender import create_app
    from recommender.dump.loader import load_catalogue
    from recommender.dump.references import drop_dangling_references
    from recommender.dump.schema import validate_dump
    from recommender.synthetic import generate_marketplace

    # Ingestion only (training has its own benchmark): engines with no training stage.
    app = create_app(
        "testing",
        MONGODB_HOST="mongomock",
        RS_API_TOKEN=None,
        CELERY_TASK_ALWAYS_EAGER=True,
        ENGINES="Random,RandomRanking",
    )
    row: dict = {"users": users, "services": services}
    with app.app_context():
        dump, row["generate"] = timed(generate_marketplace, users, services, seed)
        body = json.dumps(dump, separators=(",", ":"))
        row["dump_mib"] = len(body) / 2**20
        cpu = time.process_time()
        entities, row["validate"] = timed(validate_dump, dump)
        _, row["references"] = timed(drop_dangling_references, entities)
        _, row["load"] = timed(load_catalogue, entities)
        row["ingest"] = row["validate"] + row["references"] + row["load"]
        row["ingest_cpu"] = time.process_time() - cpu
        del dump, entities
        client = app.test_client()
        cpu = time.process_time()
        response, row["post"] = timed(
            lambda: client.post("/update", data=body, content_type="application/json")
        )
        row["post_cpu"] = time.process_time() - cpu
        task = response.get_json()
        if response.status_code != 202 or task["status"] != "succeeded":
            raise RuntimeError(f"POST /update failed: {response.status_code} {task}")
        if task["report"]["counts"]["users"] != users:
            raise RuntimeError(f"Loaded {task['report']['counts']} instead of {users} users")
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def run_size(users: int, services: int, seed: int) -> dict:
    command = [sys.executable, __file__, "--one", f"{users}x{services}", "--seed", str(seed)]
    env = {**os.environ, "FLASK_ENV": "testing", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{users}x{services} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    header = " | ".join(title for _, title, _ in COLUMNS)
    lines = [f"| {header} |", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    users, _, services = text.partition("x")
    return int(users), int(services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="USERSxSERVICES, comma-separated")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child run: one size, JSON out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*parse_size(args.one), args.seed)))
        return
    rows = []
    for size in args.sizes.split(","):
        rows.append(run_size(*parse_size(size), args.seed))
        print(f"done {size}", file=sys.stderr)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print(table(rows))
    for row in rows:
        if (row["users"], row["services"]) == (GOAL["users"], GOAL["services"]):
            verdict = "met" if row["post"] <= GOAL["seconds"] else "MISSED"
            print(f"goal: POST /update {row['post']:.1f} s <= {GOAL['seconds']:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
