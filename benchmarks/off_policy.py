"""Off-policy report benchmark: how long `flask evaluate --off-policy` takes on N logged requests
with every default engine trained.

    .venv/bin/python benchmarks/off_policy.py [--users 300] [--services 120] [--sessions 800]
        [--logged 1000 --logged 5000] [--seed 42]

On the embedded (mongomock) store, in this process:
  - seed a synthetic marketplace (`flask seed seed`'s generator) and train the whole chain (as
    `flask demo` does);
  - serve the largest N requests through POST /recommendations (logged-in users drawn at
    random, a fifth anonymous; the default engine with the serving policy's epsilon-greedy
    exploration at EXPLORATION_EPSILON_V1=0.2), and after each, with a seeded coin, a click on
    one shown service in the panel (a third of them followed by an order), through
    POST /user_actions;
  - for each N, the report over the newest N logged requests, computed afresh: wall and CPU
    seconds, and the estimates per engine.
The clicks are random, not a model of visitors: the estimates here say nothing about the
engines (benchmarks/rl.py measures the estimators against a world's true rewards).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# One thread per process, as the serving benchmarks run (torch's own pool thrashes on a shared,
# loaded machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")
CLICK = 0.3
ORDER = 1 / 3


def seeded_uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(int=int(rng.integers(2**63)), version=4))


def serve(client, catalogue, n: int, rng: np.random.Generator) -> None:
    from recommender.services.bookkeeping import writer

    users = sorted(catalogue.users)
    for i in range(n):
        visit = seeded_uuid(rng)
        user = "" if rng.random() < 0.2 else int(rng.choice(users))
        request = {
            "user_id": user,
            "unique_id": seeded_uuid(rng),
            "timestamp": f"2024-02-21T15:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
            "visit_id": visit,
            "page_id": "/services",
            "panel_id": "v1",
            "search_data": {},
            "client_id": "user_dashboard",
        }
        shown = client.post("/recommendations", json=request).get_json()["recommendations"]
        if shown and rng.random() < CLICK:
            service = int(rng.choice(shown))
            landing = seeded_uuid(rng)
            click(client, request, visit, "/services", landing, f"/services/{service}", service)
            if rng.random() < ORDER:
                page = f"/services/{service}"
                click(client, request, landing, page, seeded_uuid(rng), page, None, order=True)
    writer.flush()


def click(client, request, source, page, target, target_page, service, order=False) -> None:
    root = (
        {"type": "recommendation-panel", "panel_id": "v1", "resource_type": "service",
         "resource_id": service}
        if service is not None else None
    )  # fmt: skip
    body = {
        "unique_id": request["unique_id"],
        "timestamp": request["timestamp"],
        "source": {"visit_id": source, "page_id": page, **({"root": root} if root else {})},
        "target": {"visit_id": target, "page_id": target_page},
        "action": {"type": "button", "text": "Order" if order else "Details", "order": order},
    }
    if request["user_id"] != "":
        body["user_id"] = request["user_id"]
    assert client.post("/user_actions", json=body).status_code == 204


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--services", type=int, default=120)
    parser.add_argument("--sessions", type=int, default=800)
    parser.add_argument("--logged", type=int, action="append")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    sizes = sorted(args.logged or [1000])

    from recommender import create_app
    from recommender.commands.evaluate import off_policy_lines
    from recommender.services.off_policy import off_policy_report
    from recommender.services.runtime import runtime
    from recommender.services.seeding import seed_database
    from recommender.services.update import train_chain

    app = create_app(
        "testing",
        MONGODB_HOST="mongomock",
        RS_API_TOKEN=None,
        CELERY_TASK_ALWAYS_EAGER=True,
        RS_DATABUS_ENABLED=False,
        EXPLORATION_EPSILON_V1=0.2,
    )
    threads = os.environ["OMP_NUM_THREADS"]
    results: dict = {"load": os.getloadavg(), "threads": threads, "args": vars(args), "reports": []}
    with app.app_context():
        started = time.perf_counter()
        seed_database(args.users, args.services, args.sessions, args.seed)
        outcomes = list(train_chain(None, seed=args.seed, progress=False))
        results["training"] = {o.pipeline: o.status for o in outcomes}
        results["seed_and_train_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        serve(app.test_client(), runtime().catalogue(), sizes[-1], np.random.default_rng(args.seed))
        results["serve_s"] = round(time.perf_counter() - started, 1)
        for n in sizes:
            wall, cpu = time.perf_counter(), time.process_time()
            report = off_policy_report(max_logged=n, fresh=True)
            timing = {
                "logged": report.logged,
                "wall_s": round(time.perf_counter() - wall, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
            }
            results["reports"].append({**timing, "report": report.as_json(details=True)})
            print("\n".join(off_policy_lines(report)))
            print(json.dumps(timing))
    results["load_after"] = os.getloadavg()
    print(json.dumps({k: v for k, v in results.items() if k != "reports"}))


if __name__ == "__main__":
    main()
