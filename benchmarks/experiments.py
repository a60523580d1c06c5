"""Experiments benchmark: the results computation over a large history, and assignment's cost.

    .venv/bin/python benchmarks/experiments.py [--recommendations 1000000] [--actions 3000000]

On the embedded (mongomock) store, in this process:
  - store RECOMMENDATIONS served recommendations of one two-variant experiment and ACTIONS user
    actions (a tenth of the recommendations clicked from the panel, a third of those followed
    by an order through the visit chain, the rest other browsing), written in bulk;
  - the first refresh (every document is new), then an incremental refresh after 1% more of
    each arrived: wall and CPU seconds, peak memory (ru_maxrss);
  - what each refresh reads: documents returned by its queries and the queries it makes, which
    is what a MongoDB server with the declared indexes would fetch (see docs/benchmarks.md for
    the extrapolation), since mongomock has no indexes and scans every document instead;
  - assignment on the request path: microseconds per call, in and out of an experiment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
import timeit
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHUNK = 50_000
VARIANTS = ("control", "treatment")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def history(n_recs: int, n_actions: int, experiment: str, rng, end: dt.datetime):
    """(recommendation documents, action documents) of a synthetic traffic history that ends at
    `end` (a few microseconds apart: a refresh after `end` reads all of it)."""
    visits = [str(uuid.UUID(int=int(x))) for x in rng.integers(2**62, size=n_recs)]
    served = [end - dt.timedelta(microseconds=2 * (n_recs - i)) for i in range(n_recs)]
    shown = rng.integers(1, 5000, size=(n_recs, 3))
    recommendations = [
        {
            "visit_id": visits[i],
            "timestamp": served[i],
            "served_at": served[i],
            "services": shown[i].tolist(),
            "experiment": experiment,
            "variant": "control" if i % 2 else "treatment",
            "experiment_clicks": 0,
            "panel_id": "v1",
        }
        for i in range(n_recs)
    ]
    actions = []
    clicked = rng.choice(n_recs, size=n_recs // 10, replace=False)
    for i in clicked.tolist():
        landing = str(uuid.uuid4())
        actions.append(_action(visits[i], landing, served[i], int(shown[i][0]), order=False))
        if len(actions) % 3 == 0:
            actions.append(_action(landing, str(uuid.uuid4()), served[i], None, order=True))
    while len(actions) < n_actions:
        actions.append(_action(str(uuid.uuid4()), str(uuid.uuid4()), end, None, order=False))
    return recommendations, actions[:n_actions]


def _action(source: str, target: str, when: dt.datetime, service: int | None, order: bool):
    root = None if service is None else {"type": "recommendation_panel", "service": service}
    later = when + dt.timedelta(microseconds=1)
    return {
        "_id": uuid.uuid4().hex,
        "timestamp": later,
        "received_at": later,
        "source": {"visit_id": source, "page_id": "/services", "root": root},
        "target": {"visit_id": target, "page_id": "/services/x"},
        "action": {"type": "button", "text": "Order" if order else "Details", "order": order},
    }


def insert(collection, documents: list[dict]) -> None:
    for start in range(0, len(documents), CHUNK):
        collection.insert_many(documents[start : start + CHUNK], ordered=False)


class CountingReads:
    """Counts the find() queries and returned documents of the results code."""

    def __init__(self, *collections):
        self.queries = self.documents = 0
        self._originals = [(c, c.find) for c in collections]
        for collection, find in self._originals:
            collection.find = self._counting(find)

    def _counting(self, find):
        def counted(*args, **kwargs):
            self.queries += 1
            for document in find(*args, **kwargs):
                self.documents += 1
                yield document

        return counted

    def restore(self) -> None:
        for collection, find in self._originals:
            collection.find = find


def timed_refresh(results, experiment, collections) -> dict:
    reads = CountingReads(*collections)
    started, cpu = time.perf_counter(), time.process_time()
    results.refresh(experiment, settle=dt.timedelta(0))
    row = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "queries": reads.queries,
        "documents_read": reads.documents,
        "peak_mib": rss_mib(),
    }
    reads.restore()
    return row


def assignment_micros(current, panel: str, client: str | None) -> float:
    visitors = [str(uuid.uuid4()) for _ in range(1000)]
    calls = iter(visitors * 100)
    seconds = timeit.timeit(lambda: current.assign(panel, client, next(calls)), number=50_000)
    return seconds / 50_000 * 1e6


def run(n_recs: int, n_actions: int, seed: int) -> dict:
    from recommender import create_app
    from recommender.models.activity import Recommendation, UserAction
    from recommender.models.experiments import Experiment, Variant
    from recommender.models.ops import utcnow
    from recommender.services.experiments import results
    from recommender.services.runtime import runtime
    from recommender.store import stamps

    app = create_app("testing", MONGODB_HOST="mongomock", MODEL_RELOAD_INTERVAL=2)
    rng = np.random.default_rng(seed)
    report: dict = {"recommendations": n_recs, "actions": n_actions, "cores": os.cpu_count()}
    with app.app_context():
        experiment = Experiment(
            name="bench",
            variants=[
                Variant(name=n, engine="Random", share=0.5) for n in ("control", "treatment")
            ],
            salt="0123456789abcdef",
        ).save()
        stamps.bump("experiments")
        recs, actions = Recommendation._get_collection(), UserAction._get_collection()
        began = time.perf_counter()
        first = history(n_recs, n_actions, str(experiment.id), rng, utcnow())
        report["generate_s"] = time.perf_counter() - began
        began = time.perf_counter()
        insert(recs, first[0])
        insert(actions, first[1])
        report["insert_s"] = time.perf_counter() - began
        del first
        report["load_average_before"] = os.getloadavg()[0]
        report["first_refresh"] = timed_refresh(results, experiment, (recs, actions))
        more = history(n_recs // 100, n_actions // 100, str(experiment.id), rng, utcnow())
        insert(recs, more[0])
        insert(actions, more[1])
        report["incremental_refresh"] = timed_refresh(results, experiment, (recs, actions))
        report["results"] = experiment.reload().results["variants"]
        current = runtime().experiments
        report["assign_in_experiment_us"] = assignment_micros(current, "v1", "marketplace")
        experiment.status = "stopped"
        experiment.save()
        stamps.bump("experiments")
        report["assign_no_experiment_us"] = assignment_micros(current, "v1", "marketplace")
        report["load_average_after"] = os.getloadavg()[0]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recommendations", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(json.dumps(run(args.recommendations, args.actions, args.seed), indent=2, default=str))


if __name__ == "__main__":
    main()
