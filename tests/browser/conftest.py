"""The site the browser tests visit: a seeded app, updated and trained through `POST /update` as
the Marketplace would, with some traffic, served on a loopback port from a thread of this
process (it shares the in-process store), with RS_API_TOKEN set."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from recommender import create_app
from recommender.models.experiments import Experiment
from recommender.services.bookkeeping import writer
from recommender.services.experiments import results
from recommender.synthetic import generate_marketplace, generate_sessions
from recommender.synthetic.writer import write_sessions
from tests.api.helpers import body
from tests.browser.chromium import chromium
from tests.conftest import TEST_MONGODB_HOST, fresh_store
from tests.network import free_port
from tests.user_actions.payloads import user_action

TOKEN = "browser-test-token"
EXPERIMENT = {
    "name": "random-vs-popularity",
    "variants": [
        {"name": "control", "engine": "Random", "share": 0.5},
        {"name": "treatment", "engine": "Popularity", "share": 0.5},
    ],
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCREENSHOTS = Path(__file__).parent / "screenshots"


@dataclass(frozen=True)
class Site:
    url: str  # .../dashboard
    user_id: int
    aai_uid: str
    visit_id: str  # a visit where the user was served a panel and clicked in it
    clicked: int  # the service clicked
    answers: Counter[tuple[str, str]]  # (engine, panel) -> answers served


def recommend(client, **fields) -> dict:
    answer = client.post(
        "/recommendations", json=body(client_id="user_dashboard", **fields), headers=AUTH
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def traffic(client, user: dict) -> tuple[str, int, Counter[tuple[str, str]]]:
    """Recommendations to `user` and to anonymous visitors, and user actions on them; returns
    the visit the user clicked in, the service clicked and the answers per engine and panel."""
    visit = str(uuid.uuid4())
    served = recommend(client, user_id=user["id"], aai_uid=user["aai_uid"], visit_id=visit)
    answers = [served] + [recommend(client, panel_id=panel) for panel in ("v1", "v2", "v1")]
    clicked = served["recommendations"][0]
    click = user_action(
        user_id=user["id"],
        source__visit_id=visit,
        source__root__resource_id=clicked,
        target__page_id=f"/services/{clicked}",
    )
    for action in (click, click, user_action(unique_id="not a uuid")):
        client.post("/user_actions", json=action, headers=AUTH)
    writer.flush()
    return visit, clicked, Counter((a["engine_version"], a["panel_id"]) for a in answers)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with fresh_store(TEST_MONGODB_HOST) as overrides:
        app = create_app(
            "testing",
            **overrides,
            RS_API_TOKEN=TOKEN,
            MODEL_RELOAD_INTERVAL=0,
            CELERY_TASK_ALWAYS_EAGER=True,
            PROMOTION_MIN_USERS=1,  # a small world: let the gates judge on its few users
        )
        with app.app_context():
            dump = generate_marketplace(users=60, services=30, seed=3)
            write_sessions(*generate_sessions(dump, sessions=80, seed=3))
            client = app.test_client()
            update = client.post("/update", json=dump, headers=AUTH)  # loads and trains
            assert update.status_code == 202, update.json
            user = next(u for u in dump["users"] if u["accessed_services"])
            experiment = client.post("/experiments", json=EXPERIMENT, headers=AUTH).json
            visit, clicked, answers = traffic(client, user)
            results.refresh(Experiment.objects.get(id=experiment["id"]), settle=dt.timedelta(0))
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="dashboard-site", daemon=True)
        thread.start()
        try:
            yield Site(
                f"http://127.0.0.1:{server.port}/dashboard",
                user["id"],
                user["aai_uid"],
                visit,
                clicked,
                answers,
            )
        finally:
            server.shutdown()
            thread.join(10)


@pytest.fixture(scope="module")
def driver():
    with chromium() as browser:
        yield browser
