"""Dashboard benchmark: the server time of each page over a large store, on the in-process
(mongomock) store.

    .venv/bin/python benchmarks/dashboard.py [--runs 10000] [--recommendations 1000000]
        [--actions 200000] [--repeat 15] [--seed 42]

The store holds a synthetic catalogue (2,000 users, 500 services), RUNS pipeline runs (five
pipelines, each run with its six steps, and its pipeline's metrics and 20-epoch curves),
RECOMMENDATIONS served recommendations (20 candidates each, over 30 days; one user has 500 of
them), ACTIONS user actions and the traffic rollups' steady state with every counter busy
(6 engines x 2 panels, 2 sources x 3 outcomes). Each page is requested through the Flask test
client: the app's own time (routing, queries, templates), no network. One warm-up view, then
--repeat timed views: the median and slowest wall-clock time, and the median CPU time of the
process (on a shared machine, wall time includes waiting for a core).

mongomock has no indexes: every query scans its whole collection in Python and copies each
document it matches, where MongoDB reads a few index entries and documents. So the time spent
inside the store (every mongomock query, cursor step, count and aggregation, as CPU time) is
measured apart, and the page's own CPU time (routing, the services' work on what the store
returned, templates, charts) is the rest: on MongoDB a page costs its own time plus what its
indexed queries take on the server (estimated in docs/benchmarks.md, not measured here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import mongomock
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL_MS = 200.0
PIPELINES = ("AE", "Embedding", "NCF", "RL", "Popularity")
STEPS = ("extract", "validate_data", "prepare", "train", "evaluate", "validate_model")
ENGINES = ("NCF", "RL", "Random", "NCFRanking", "RandomRanking", "Popularity")
HEAVY_USER, HEAVY_COUNT = 1, 500
BATCH = 50_000
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def make_app():
    from recommender import create_app

    return create_app(
        "testing", MONGODB_HOST="mongomock", RS_API_TOKEN=None, CELERY_TASK_ALWAYS_EAGER=True
    )


def metrics_and_curves(pipeline: str, rng: np.random.Generator) -> tuple[dict, dict]:
    """What each pipeline records, shaped as the real ones record it."""
    rand = lambda: float(rng.uniform())  # noqa: E731
    epochs = range(1, 21)
    if pipeline == "NCF":
        split = {"hr@10": rand(), "ndcg@10": rand(), "hr@3": rand(), "users": 400}
        measured = {"valid": split, "test": split}
        tags = ("loss/train", "validation/hr@10", "validation/ndcg@10")
        metrics = {"ncf": measured, "popularity": measured, "epochs": 20, "best_epoch": 12}
    elif pipeline == "AE":
        tags = ("users/train_loss", "users/val_loss", "services/train_loss", "services/val_loss")
        metrics = {
            e: {"val_loss": rand(), "untrained_val_loss": rand()} for e in ("users", "services")
        }
    elif pipeline == "RL":
        tags = ("v1/critic_loss", "v1/actor_loss", "v2/critic_loss", "v2/actor_loss")
        chooser = {"reward": rand(), "hr@3": rand(), "ms_per_session": rand()}
        metrics = {p: {"sessions": 400, "rl": chooser, "random": chooser} for p in ("v1", "v2")}
    else:
        tags, metrics = (), {"orders": 100, "panel_clicks": 400, "services": 500}
    return metrics, {tag: [[epoch, rand()] for epoch in epochs] for tag in tags}


def run_document(number: int, rng: np.random.Generator) -> dict:
    """A pipeline run as PipelineRun records it."""
    started = NOW - dt.timedelta(minutes=10 * number)
    pipeline = PIPELINES[number % len(PIPELINES)]
    metrics, curves = metrics_and_curves(pipeline, rng)
    return {
        "pipeline": pipeline,
        "status": "promoted" if number % 7 else "rejected",
        "reason": None if number % 7 else "NCF's HR@10 does not beat Popularity's",
        "seed": 42,
        "model_version": number,
        "start_time": started,
        "end_time": started + dt.timedelta(minutes=3),
        "steps": [
            {
                "name": name,
                "status": "completed",
                "start_time": started,
                "end_time": started,
                "duration_s": float(rng.uniform(0, 30)),
                "details": {"rows": 1000, "users": 2000},
            }
            for name in STEPS
        ],
        "metrics": metrics,
        "curves": curves,
    }


def recommendations(
    start: int, count: int, rng: np.random.Generator, visits: list[str]
) -> list[dict]:
    """Served recommendations `start` to `start + count`; the first HEAVY_COUNT are the heavy
    user's, a third of the others anonymous."""
    users = rng.integers(2, 2000, count)
    minutes = rng.integers(0, 30 * 24 * 60, count)
    candidates = rng.integers(1, 500, (count, 20))
    documents = []
    for n in range(count):
        i = start + n
        visit = visits[i % len(visits)]
        user = HEAVY_USER if i < HEAVY_COUNT else (int(users[n]) if i % 3 else None)
        row = candidates[n].tolist()
        documents.append(
            {
                "user": user,
                "aai_uid": f"user{user}@egi.eu" if user is not None else None,
                "unique_id": str(uuid.UUID(int=i)),
                "client_id": "marketplace",
                "timestamp": NOW - dt.timedelta(minutes=int(minutes[n])),
                "visit_id": visit,
                "page_id": "/services",
                "panel_id": "v1" if i % 2 else "v2",
                "engine_version": ENGINES[i % len(ENGINES)],
                "services": row[:3],
                "scores": [0.9, 0.5, 0.1],
                "candidates": row,
                "search_data": {},
                "processed": False,
            }
        )
    return documents


def user_actions(count: int, visits: list[str]) -> list[dict]:
    return [
        {
            "_id": f"action-{i}",
            "user": None,
            "unique_id": str(uuid.UUID(int=i)),
            "timestamp": NOW - dt.timedelta(minutes=i % 40000),
            "source": {
                "visit_id": visits[i % len(visits)],
                "page_id": "/services",
                "root": {"type": "recommendation_panel", "service": 1 + i % 500},
            },
            "target": {"visit_id": str(uuid.uuid4()), "page_id": f"/services/{1 + i % 500}"},
            "action": {"type": "button", "text": "Details", "order": False},
            "channel": "http",
            "processed": False,
        }
        for i in range(count)
    ]


def rollups() -> tuple[list[dict], list[dict]]:
    """The rollups' steady state, every counter busy: 2 hours of 5-minute buckets and 2 days
    of hourly ones (what their TTL keeps)."""
    from recommender.models.traffic import KEPT_S
    from recommender.services.traffic import bucket_of

    now = time.time()
    buckets = [(300, bucket_of(now) - dt.timedelta(minutes=5 * i)) for i in range(24)]
    buckets += [(3600, bucket_of(now, 3600) - dt.timedelta(hours=i)) for i in range(48)]
    stamps = [
        {"span": span, "bucket": b, "expires_at": b + dt.timedelta(seconds=KEPT_S[span])}
        for span, b in buckets
    ]
    served = [
        {**stamp, "engine": e, "panel_id": p, "count": 7}
        for stamp in stamps
        for e in ENGINES
        for p in ("v1", "v2")
    ]
    actions = [
        {**stamp, "source": s, "outcome": o, "count": 3}
        for stamp in stamps
        for s in ("http", "databus")
        for o in ("stored", "duplicate", "rejected")
    ]
    return served, actions


def insert(collection, documents: list[dict]) -> None:
    for start in range(0, len(documents), BATCH):
        collection.insert_many(documents[start : start + BATCH], ordered=False)


def fill(args: argparse.Namespace) -> tuple[str, str]:
    """Fill the current app's store; returns the heavy user's aai_uid and a visit id."""
    from recommender.dump.loader import load_catalogue
    from recommender.dump.references import drop_dangling_references
    from recommender.dump.schema import validate_dump
    from recommender.store import get_db
    from recommender.synthetic import generate_marketplace

    rng = np.random.default_rng(args.seed)
    entities = validate_dump(generate_marketplace(users=2000, services=500, seed=args.seed))
    drop_dangling_references(entities)
    load_catalogue(entities)
    db = get_db()
    insert(db.pipeline_metadata, [run_document(i, rng) for i in range(args.runs)])
    visits = [str(uuid.uuid4()) for _ in range(max(args.recommendations // 3, 1))]
    for start in range(0, args.recommendations, BATCH):
        size = min(BATCH, args.recommendations - start)
        db.recommendation.insert_many(recommendations(start, size, rng, visits), ordered=False)
    insert(db.user_action, user_actions(args.actions, visits))
    served, actions = rollups()
    insert(db.recommendation_traffic, served)
    insert(db.user_action_traffic, actions)
    user = db.user.find_one({"_id": HEAVY_USER}) or {}
    return user.get("aai_uid") or f"user{HEAVY_USER}@egi.eu", visits[0]


class StoreClock:
    """CPU seconds spent inside mongomock (queries run lazily, at a cursor's first step)."""

    METHODS = (
        (mongomock.collection.Cursor, "__next__"),
        (mongomock.collection.Collection, "find_one"),
        (mongomock.collection.Collection, "distinct"),
        (mongomock.collection.Collection, "aggregate"),
        (mongomock.collection.Collection, "count_documents"),
    )

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        for owner, name in self.METHODS:
            setattr(owner, name, self._timed(getattr(owner, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            self._depth += 1  # nested store calls (find_one steps a cursor) count once
            started = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.seconds += time.process_time() - started

        return timed


def timed_page(client, clock: StoreClock, url: str, repeat: int) -> dict[str, float]:
    """Medians over `repeat` views (after a warm-up view): wall-clock ms, CPU ms, CPU ms in
    the store, the page's own CPU ms; and the slowest wall-clock ms."""
    answer = client.get(url)
    if answer.status_code != 200:
        raise RuntimeError(f"{url}: {answer.status_code}")
    wall, cpu, store = [], [], []
    for _ in range(repeat):
        clock.seconds = 0.0
        started, started_cpu = time.perf_counter(), time.process_time()
        client.get(url)
        wall.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.process_time() - started_cpu))
        store.append(1000 * clock.seconds)
    own = [total - in_store for total, in_store in zip(cpu, store, strict=True)]
    return {
        "wall": statistics.median(wall),
        "slowest": max(wall),
        "cpu": statistics.median(cpu),
        "store": statistics.median(store),
        "own": statistics.median(own),
    }


def pages(run_id: str, aai_uid: str, visit: str) -> list[tuple[str, str]]:
    return [
        ("Overview", "/dashboard/"),
        ("Training (all pipelines)", "/dashboard/training"),
        ("Training, NCF only", "/dashboard/training?pipeline=NCF"),
        ("Training, page 100", "/dashboard/training?page=100"),
        ("One run", f"/dashboard/training/{run_id}"),
        ("Look-up: user id", f"/dashboard/recommendations?kind=user&q={HEAVY_USER}"),
        ("Look-up: aai_uid", f"/dashboard/recommendations?kind=aai_uid&q={aai_uid}"),
        ("Look-up: visit", f"/dashboard/recommendations?kind=visit&q={visit}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--recommendations", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from recommender.store import get_db

    load_before = os.getloadavg()[0]
    clock = StoreClock()
    app = make_app()
    with app.app_context():
        started = time.perf_counter()
        aai_uid, visit = fill(args)
        print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        run = get_db().pipeline_metadata.find_one({"pipeline": "NCF"}, {"_id": 1})
        client = app.test_client()
        started = time.perf_counter()
        client.get("/dashboard/")  # the first view runs the health checks
        cold = 1000 * (time.perf_counter() - started)
        measured = {
            name: timed_page(client, clock, url, args.repeat)
            for name, url in pages(str(run["_id"]), aai_uid, visit)
        }
    print(
        f"cores: {os.cpu_count()}, load average before/after: {load_before:.1f} / "
        f"{os.getloadavg()[0]:.1f}; runs {args.runs:,}, recommendations "
        f"{args.recommendations:,}, user actions {args.actions:,}"
    )
    print(f"Overview, first view (runs the health checks): {cold:.0f} ms")
    print("| page | wall ms | slowest wall ms | CPU ms | in the store | page's own |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in measured.items():
        print(
            f"| {name} | {m['wall']:.1f} | {m['slowest']:.1f} | {m['cpu']:.1f} | "
            f"{m['store']:.1f} | {m['own']:.1f} |"
        )


if __name__ == "__main__":
    main()
