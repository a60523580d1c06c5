"""What a crashed API process can lose, and how fast the outbox drains to the databus.

    .venv/bin/python benchmarks/outbox.py [--clients 4] [--seconds 5] [--services 1000]

1. **crash window**: `--clients` threads send Marketplace requests to one API process (the WSGI
   app in this process, mongomock store) for `--seconds`, while a sampler reads the deferred
   writer's pending documents every millisecond. A process killed at any instant loses exactly
   what was pending then (everything else is stored, and stored documents are the outbox): the
   largest and the 99th percentile of the samples, in documents and in milliseconds of traffic.
2. **drain**: the stored recommendations are sent by `publish_pending` (one STOMP connection,
   a receipt per message, each marked published) to the real broker (RabbitMQ STOMP at
   127.0.0.1:61613, guest/guest unless TEST_RS_DATABUS_* say otherwise); messages/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FLASK_ENV", "production")

from recommender import create_app  # noqa: E402
from recommender.databus.publisher import publish_pending  # noqa: E402
from recommender.dump.loader import load_catalogue  # noqa: E402
from recommender.dump.references import drop_dangling_references  # noqa: E402
from recommender.dump.schema import validate_dump  # noqa: E402
from recommender.engines.popularity.pipeline import train as train_popularity  # noqa: E402
from recommender.models.activity import Recommendation  # noqa: E402
from recommender.services.bookkeeping import writer  # noqa: E402
from recommender.services.runtime import runtime  # noqa: E402
from recommender.services.update import training_env  # noqa: E402
from recommender.synthetic.marketplace import generate_marketplace  # noqa: E402
from tests.api.helpers import body  # noqa: E402
from tests.databus.bus import BUS_OVERRIDES  # noqa: E402


def serve(app, clients: int, seconds: float) -> tuple[int, list[int]]:
    """(requests answered, pending-document samples) under `clients` concurrent senders."""
    stop = threading.Event()
    answered = [0] * clients
    samples: list[int] = []

    def send(index: int) -> None:
        client = app.test_client()
        while not stop.is_set():
            response = client.post("/recommendations", json=body(engine_version="Popularity"))
            assert response.status_code == 200
            answered[index] += 1

    def sample() -> None:
        while not stop.is_set():
            samples.append(writer.pending())
            time.sleep(0.001)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=sample))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(answered), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    app = create_app(
        MONGODB_HOST="mongomock",
        RS_API_TOKEN=None,
        RS_DATABUS_PUBLISH_TOPIC=f"/topic/benchmark-{uuid.uuid4().hex}",
        **BUS_OVERRIDES,
    )
    with app.app_context():
        entities = validate_dump(generate_marketplace(args.users, args.services, seed=1))
        drop_dangling_references(entities)
        load_catalogue(entities)
        train_popularity(training_env())
        answered, samples = serve(app, args.clients, args.seconds)
        writer.flush()
        rate = answered / args.seconds
        pending = np.asarray(samples)
        print(f"served {answered} in {args.seconds:.0f} s ({rate:.0f}/s, {args.clients} clients)")
        print(
            f"pending documents: max {pending.max()}, p99 {np.percentile(pending, 99):.0f}, "
            f"mean {pending.mean():.1f} over {len(pending)} samples; max = "
            f"{1000 * pending.max() / rate:.0f} ms of traffic "
            f"(writer: interval {writer.interval * 1000:.0f} ms, batch {writer.batch})"
        )
        waiting = Recommendation.objects(published=False).count()
        started = time.perf_counter()
        sent = publish_pending(runtime().settings)
        elapsed = time.perf_counter() - started
        print(f"drain: {sent} of {waiting} sent in {elapsed:.2f} s ({sent / elapsed:.0f}/s)")


if __name__ == "__main__":
    main()
