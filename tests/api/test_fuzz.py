"""Property-based fuzzing of the operations in the app's own OpenAPI spec: never a server error.

schemathesis generates requests that fit the schema (positive) and requests that break it
(negative) and sends them through the WSGI app; a stateful run also follows the spec's links
(`POST /update` -> `GET /update/<task_id>`). Two configurations: the tests' (eager tasks, the
engines Popularity and Random serve) and the demo's (`flask demo`: a Celery worker thread on an
in-memory broker, the databus off). A catalogue is loaded and Popularity trained so that
requests reach the engines, not only the validation; both start healthy (`/health` 200).

`GET /health` is fuzzed too. It answers 503 by contract when a check is DOWN, which a generated
dump can cause legitimately (a forced tiny catalogue is under the health thresholds): that 503
must still be the health tree; any other 5xx fails.
"""

from __future__ import annotations

import pytest
import schemathesis
from celery.contrib.testing.worker import start_worker
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.services.bookkeeping import writer
from tests.api.helpers import load
from tests.app_helpers import env, use_stages
from tests.conftest import build_app

pytestmark = pytest.mark.slow

# Examples per operation: most for the endpoint under test, fewer for the others.
EXAMPLES = {("POST", "/recommendations"): 80}
OTHER_EXAMPLES = 25
SERVED = "Popularity,Random,RandomRanking"  # the engines trained here, so /health is UP


def no_server_error(method: str, path: str, response) -> None:
    if path == "/health" and response.status_code == 503:
        assert response.json()["status"] == "DOWN", response.text
        return
    assert response.status_code < 500, f"{method} {path} -> {response.status_code}"


def ready(app, monkeypatch) -> None:
    """Loaded, Popularity trained, healthy; a generated valid dump trains nothing."""
    load()
    train_popularity(env())
    use_stages(monkeypatch, {})  # else a generated valid dump would train inside the request
    health = app.test_client().get("/health")
    assert health.status_code == 200, health.get_json()


@pytest.fixture
def tests_app(store_overrides, monkeypatch):
    app = build_app(store_overrides, ENGINES=SERVED, RS_DATABUS_ENABLED=False)
    with app.app_context():
        ready(app, monkeypatch)
        yield app
    writer.flush()


@pytest.fixture
def demo_app(app, monkeypatch):
    """The app `flask demo` builds (its worker thread included), serving SERVED."""
    from recommender.celery_app import celery
    from recommender.commands.demo import build_demo_app

    monkeypatch.setenv("ENGINES", SERVED)
    demo = build_demo_app(app)
    with demo.app_context():
        with start_worker(celery, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            ready(demo, monkeypatch)
            yield demo
        writer.flush()
    celery.conf.task_always_eager = True


@pytest.fixture(params=["tests", "demo"])
def fuzzed_app(request):
    return request.getfixturevalue(f"{request.param}_app")


def operations(schema) -> list:
    found = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in found} >= {
        ("POST", "/recommendations"),
        ("POST", "/update"),
        ("GET", "/update/{task_id}"),
        ("GET", "/health"),
    }
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(fuzzed_app, mode):
    schema = schemathesis.openapi.from_wsgi("/swagger.json", fuzzed_app)
    for operation in operations(schema):

        @settings(
            max_examples=EXAMPLES.get((operation.method.upper(), operation.path), OTHER_EXAMPLES),
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            no_server_error(case.method, case.path, case.call())

        check()


def test_stateful_runs_follow_update_links_without_a_server_error(fuzzed_app):
    # The linked operations only: the other endpoints have their own (stateless) runs above.
    schema = schemathesis.openapi.from_wsgi("/swagger.json", fuzzed_app).include(
        path_regex="^/update"
    )
    followed: list[int] = []  # statuses of GET /update/<task_id> reached through a link

    class Machine(schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            no_server_error(case.method, case.operation.path, response)
            if case.operation.path == "/update/{task_id}" and case.path_parameters:
                followed.append(response.status_code)

    Machine.run(
        settings=settings(
            max_examples=20,
            stateful_step_count=4,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert 200 in followed  # a task id from POST /update found its task
