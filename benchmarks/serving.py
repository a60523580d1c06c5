"""Serving benchmark: `POST /recommendations` per engine under gunicorn, as in production.

    .venv/bin/python benchmarks/serving.py [--services 5000] [--users 20000] [--candidates 1000]

The driver starts gunicorn with `--preload` on `create_benchmark_app()` below: the preloaded app
seeds a synthetic marketplace (recommender.synthetic: catalogue loaded as `/update` does, users,
orders, browsing sessions) into an in-process mongomock store, trains every stage of the
training chain and warms the caches, so each worker forks from a ready app. The driver then
measures, per registered engine, single-client latency (p50/p99, keep-alive connection) and
throughput with concurrent client processes, and the same for a trivial JSON route of the same
app (`GET /ping`, added here only) as the ceiling, measured again just before each engine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "BENCH_"


# --- the app gunicorn preloads ------------------------------------------------------------


def create_benchmark_app():
    """The production app on a seeded, trained mongomock store, plus `GET /ping`."""
    from flask import jsonify

    from recommender import create_app
    from recommender.model_store import versions as model_store
    from recommender.services.runtime import runtime
    from recommender.services.seeding import seed_database
    from recommender.services.update import train_chain

    settings = json.loads(os.environ[f"{ENV_PREFIX}SETTINGS"])
    app = create_app("production", MONGODB_HOST="mongomock", RS_API_TOKEN=None)
    app.add_url_rule("/ping", "ping", lambda: jsonify({"status": "ok"}))
    with app.app_context():
        print(seed_database(**settings["seed_database"]), flush=True)
        outcomes = train_chain(None, seed=settings["seed_database"]["seed"], progress=False)
        print("trained:", {o.pipeline: o.status for o in outcomes}, flush=True)
        # What Hybrid and Auto serve: the blend's parts, and the engine Auto delegates to.
        for name, keys in (
            ("hybrid", ("parts", "recency_decay", "covisits", "text_decay")),
            ("champion", ("engine",)),
        ):
            live = model_store.live_version(name)
            if live is not None:
                print(f"{name}:", {key: live.config.get(key) for key in keys}, flush=True)
        runtime().catalogue()  # warm: built once here, shared by every forked worker
        for engine in runtime().engines.engines().values():
            engine.is_ready()
    use_diagnostic_bookkeeping(settings["bookkeeping"])
    return app


def use_diagnostic_bookkeeping(mode: str) -> None:
    """Diagnostics of what storing served recommendations costs (`store` is production's).
    `encode`: the writer BSON-encodes each document, as a MongoDB client does before sending
    it, and keeps nothing (with a MongoDB server the documents live in its process, not in the
    worker's heap as mongomock's do). `off`: nothing is stored."""
    import bson

    from recommender.services import bookkeeping

    if mode == "encode":
        bookkeeping._insert = lambda _collection, docs: [bson.encode(doc) for doc in docs]
    elif mode == "off":
        bookkeeping.writer.insert = lambda *_: None


# --- the driver ---------------------------------------------------------------------------


def request_bodies(args, dump: dict, engine: str, n: int = 200) -> list[bytes]:
    """Marketplace-shaped requests with `args.candidates` candidates each (any status, as the
    Marketplace's search sends them); Popularity is asked for anonymous visitors."""
    rng = np.random.default_rng(args.seed + 1)
    service_ids = np.array([s["id"] for s in dump["services"]])
    user_ids = np.array([u["id"] for u in dump["users"]])
    category_ids = np.array([c["id"] for c in dump["categories"]])
    anonymous = engine == "Popularity"
    bodies = []
    for _ in range(n):
        candidates = rng.choice(service_ids, min(args.candidates, len(service_ids)), replace=False)
        body = {
            "user_id": "" if anonymous else int(rng.choice(user_ids)),
            "unique_id": str(uuid.UUID(int=int(rng.integers(2**62)))),
            "timestamp": "2024-02-21T15:19:43.512+0100",
            "visit_id": str(uuid.UUID(int=int(rng.integers(2**62)))),
            "page_id": "/services",
            "panel_id": "v1",
            "engine_version": engine,
            "candidates": candidates.tolist(),
            "search_data": {"categories": [int(rng.choice(category_ids))]} if anonymous else {},
            "client_id": "search_service",
        }
        bodies.append(json.dumps(body).encode())
    return bodies


def call(connection: http.client.HTTPConnection, body: bytes | None) -> bytes:
    if body is None:
        connection.request("GET", "/ping")
    else:
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/recommendations", body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
    return data


def latencies(port: int, bodies: list[bytes | None], n: int) -> np.ndarray:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for body in bodies[:20]:  # warm-up
        call(connection, body)
    timings = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        call(connection, bodies[i % len(bodies)])
        timings[i] = time.perf_counter() - started
    connection.close()
    return timings


def _client(port: int, bodies: list[bytes | None], until: float, counts) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    done = 0
    while time.time() < until:
        call(connection, bodies[done % len(bodies)])
        done += 1
    counts.put(done)


def workers_cpu_seconds(master: int) -> float:
    """CPU time (user + system, all threads) used so far by the gunicorn master's workers."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # parent pid; utime and stime follow
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(master: int, quiet_s: float = 0.5, timeout_s: float = 60.0) -> None:
    """Wait until the workers are idle: the bookkeeping writer may still be storing what a run
    queued, and the next measurement must not pay for it."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        before = workers_cpu_seconds(master)
        time.sleep(quiet_s)
        if workers_cpu_seconds(master) - before < 0.05 * quiet_s:
            return


def throughput(
    port: int, bodies: list[bytes | None], clients: int, seconds: float, master: int
) -> tuple[float, float]:
    """(requests per second, server CPU milliseconds per request) with `clients` clients; the
    CPU includes storing what the run queued (read once the workers are idle again)."""
    settle(master)
    cpu = workers_cpu_seconds(master)
    counts = multiprocessing.get_context("fork").Queue()
    until = time.time() + seconds
    workers = [
        multiprocessing.get_context("fork").Process(
            target=_client, args=(port, bodies, until, counts)
        )
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    total = sum(counts.get() for _ in workers)
    for worker in workers:
        worker.join()
    settle(master)
    return total / seconds, 1000 * (workers_cpu_seconds(master) - cpu) / total


def engine_used(port: int, body: bytes) -> tuple[str, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    answer = json.loads(call(connection, body))
    connection.close()
    return answer["engine_version"], len(answer["recommendations"])


def start_server(args) -> subprocess.Popen:
    settings = {
        "seed_database": {
            "services": args.services,
            "users": args.users,
            "sessions": args.sessions,
            "seed": args.seed,
        },
        "bookkeeping": args.bookkeeping,
    }
    env = {
        **os.environ,
        f"{ENV_PREFIX}SETTINGS": json.dumps(settings),
        "FLASK_ENV": "production",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--preload",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--workers",
        str(args.workers),
        "--access-logfile",
        "/dev/null",
        "--log-level",
        "warning",
        "benchmarks.serving:create_benchmark_app()",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.time() + args.start_timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            call(http.client.HTTPConnection("127.0.0.1", args.port, timeout=1), None)
            return server
        except OSError:
            time.sleep(1)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start in time")


def measure(args, master: int, name: str, bodies: list[bytes | None]) -> dict:
    settle(master)
    timings = latencies(args.port, bodies, args.requests) * 1000
    rps, cpu_ms = throughput(args.port, bodies, args.clients, args.seconds, master)
    return {
        "name": name,
        "p50": float(np.percentile(timings, 50)),
        "p99": float(np.percentile(timings, 99)),
        "rps": rps,
        "cpu_ms": cpu_ms,
    }


def report(args, rows: list[tuple[dict, dict]]) -> str:
    """One line per engine, next to the ceiling measured just before it."""
    lines = [
        f"{args.services} services, {args.users} users, {args.candidates} candidates, "
        f"{args.workers} gunicorn workers (gthread), {args.clients} concurrent clients, "
        f"{os.cpu_count()} CPUs, bookkeeping: {args.bookkeeping}, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "",
        "| Engine (really used) | p50 ms | p99 ms | req/s | ceiling req/s | % of ceiling "
        "| server CPU ms/req | ceiling CPU ms/req | CPU % of ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ceiling, row in rows:
        share = 100 * row["rps"] / ceiling["rps"]
        cpu_share = 100 * ceiling["cpu_ms"] / row["cpu_ms"]
        lines.append(
            f"| {row['name']} | {row['p50']:.2f} | {row['p99']:.2f} | {row['rps']:.0f} "
            f"| {ceiling['rps']:.0f} | {share:.0f} | {row['cpu_ms']:.2f} "
            f"| {ceiling['cpu_ms']:.2f} | {cpu_share:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=2000, help="synthetic browsing sessions")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--requests", type=int, default=1000, help="single-client requests")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--start-timeout", type=float, default=1800.0)
    parser.add_argument("--engines", nargs="*", help="default: every registered engine")
    parser.add_argument(
        "--bookkeeping",
        choices=("store", "encode", "off"),
        default="store",
        help="store: as production (into mongomock); encode, off: diagnostics, see "
        "use_diagnostic_bookkeeping",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from recommender.settings import DEFAULT_ENGINES
    from recommender.synthetic.marketplace import generate_marketplace

    names = args.engines or list(DEFAULT_ENGINES)
    dump = generate_marketplace(users=args.users, services=args.services, seed=args.seed)
    started = time.time()
    server = start_server(args)
    print(f"server ready in {time.time() - started:.0f} s", flush=True)
    try:
        rows = []
        for name in names:
            # The ceiling is measured again before each engine: with mongomock every stored
            # recommendation stays in the worker's own heap, so the process slows as the run
            # goes on (a MongoDB server keeps them out of it); each ratio compares like with like.
            ceiling = measure(args, server.pid, "ping", [None])
            bodies = request_bodies(args, dump, name)
            used, n = engine_used(args.port, bodies[0])
            rows.append(
                (ceiling, measure(args, server.pid, f"{name} ({used}, {n} returned)", bodies))
            )
            print(rows[-1], flush=True)
        print(report(args, rows))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
