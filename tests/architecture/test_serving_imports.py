"""Serving never imports training: an API process that answers a request with every engine
holds no pipeline, RL training, SARS or synthetic-data module in `sys.modules`.

The trained world is built here (training imports everything) and copied, through a snapshot
file, into a fresh interpreter that only builds the app and serves.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recommender import create_app
from recommender.settings import DEFAULT_ENGINES
from tests.worlds import build_trained_world

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRAINING_MODULES = (
    "recommender.engines.base.pipeline",
    "recommender.engines.base.collaborative",
    "recommender.engines.autoencoders.pipeline",
    "recommender.engines.ncf.pipeline",
    "recommender.engines.ncf.training",
    "recommender.engines.popularity.pipeline",
    "recommender.engines.rl.pipeline",
    "recommender.engines.rl.training",
    "recommender.engines.rl.synthetic",
    "recommender.engines.rl.data",
    "recommender.engines.rl.evaluation",
    "recommender.sessions",
    "recommender.synthetic",
)
SERVE = textwrap.dedent(
    """
    import json, pickle, sys
    from recommender import create_app
    from recommender.store import get_db

    app = create_app("testing", MONGODB_HOST="mongomock", RS_API_TOKEN=None)
    with app.app_context():
        snapshot, user, engines = pickle.load(open(sys.argv[1], "rb"))
        for name, documents in snapshot.items():
            if documents:
                get_db()[name].insert_many(documents)
    client = app.test_client()
    answered = {}
    for engine in engines:
        anonymous = engine in ("Popularity",)
        answer = client.post("/recommendations", json={
            "user_id": "" if anonymous else user,
            "unique_id": "5642c351-80fe-44cf-b606-304f2f338122",
            "timestamp": "2024-02-21T15:19:43.512+0100",
            "visit_id": None, "page_id": "/services", "engine_version": engine,
            "search_data": {},
        })
        answered[engine] = [answer.status_code, answer.get_json()["engine_version"]]
    modules = sorted(m for m in sys.modules if m.startswith("recommender"))
    print(json.dumps({"answered": answered, "modules": modules}))
    """
)


@pytest.fixture(scope="module")
def world_file(tmp_path_factory) -> Path:
    app = create_app("testing", MONGODB_HOST="mongomock", CELERY_TASK_ALWAYS_EAGER=True)
    with app.app_context():
        world = build_trained_world()
    user = next(u["id"] for u in world.dump["users"] if len(u["accessed_services"]) >= 2)
    path = tmp_path_factory.mktemp("world") / "snapshot.pickle"
    path.write_bytes(pickle.dumps((world.snapshot, user, list(DEFAULT_ENGINES))))
    return path


def test_an_api_process_serves_every_engine_without_training_code(world_file):
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(world_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Every engine answered as itself: its model was live and served.
    assert result["answered"] == {name: [200, name] for name in DEFAULT_ENGINES}
    loaded = [
        m
        for m in result["modules"]
        if m.startswith(TRAINING_MODULES) or m.endswith(".pipeline")  # every engine's training
    ]
    assert loaded == []
    assert "recommender.engines.ncf.inference" in result["modules"]  # it did serve NCF
