"""The compose files, checked as far as a machine without Docker allows: YAML that lints clean,
the services each stack runs, their commands, settings, ports, health checks and dependencies.

Stacks are assembled as `docker compose -f A -f B` would (later files override earlier ones) and
`${VAR:-default}` is interpolated as compose does, so port bindings are checked as they resolve.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from flask import cli
from yamllint import linter
from yamllint.config import YamlLintConfig

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker-compose.yml"
COMPOSE_FILES = (
    BASE,
    "development.yml",
    "jupyter.yml",
    "docker-compose.testing.yml",
    "production.yml",
    "monitoring.yml",
)
STACKS = {
    "development": (BASE, "development.yml"),
    "jupyter": (BASE, "development.yml", "jupyter.yml"),
    "testing": ("docker-compose.testing.yml",),
    "production": (BASE, "production.yml"),
    "monitoring": (BASE, "production.yml", "monitoring.yml"),
    "monitoring-development": (BASE, "development.yml", "monitoring.yml"),
}
STORES = ("mongo", "redis", "broker")
ROLES = ("api", "worker", "beat", "subscriber")
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")
LINT = YamlLintConfig(
    "{extends: default, rules: {line-length: {max: 100}, document-start: disable}}"
)


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def stack(name: str) -> dict:
    merged: dict = {}
    for file in STACKS[name]:
        merged = merge(merged, load(file))
    return merged


def interpolate(text: str, env: dict[str, str]) -> str:
    """`${VAR}`, `${VAR-default}`, `${VAR:-default}` as compose resolves them."""

    def resolve(match: re.Match) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        value = env.get(name)
        if (op == ":-" and not value) or (op == "-" and value is None):
            return default
        return value or ""

    return VARIABLE.sub(resolve, text)


def command(service: dict) -> str:
    value = service.get("command", "")
    return " ".join(value) if isinstance(value, list) else value


def env_example_names() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0].strip() for line in lines if re.match(r"^\w+=", line)}


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_lints_clean(name):
    problems = list(linter.run((ROOT / name).read_text(), LINT, name))
    assert problems == []
    assert load(name)["services"]


def test_stores_keep_the_original_host_port_variables():
    services = load(BASE)["services"]
    assert services["mongo"]["ports"] == ["${MONGODB_HOST:-127.0.0.1:27017}:27017"]
    assert services["redis"]["ports"] == ["${REDIS_HOST:-127.0.0.1:6379}:6379"]
    assert "${RABBIT_HOST:-127.0.0.1:61613}:61613" in services["broker"]["ports"]
    assert any(port.endswith(":8161") for port in services["broker"]["ports"])
    assert services["broker"]["image"].startswith("apache/activemq-classic:")
    assert services["mongo"]["image"].startswith("mongo:")
    assert services["redis"]["image"].startswith("redis:")
    # Unset variables bind to loopback only; a variable moves the binding.
    assert interpolate(services["mongo"]["ports"][0], {}) == "127.0.0.1:27017:27017"
    moved = interpolate(services["redis"]["ports"][0], {"REDIS_HOST": "0.0.0.0:16379"})
    assert moved == "0.0.0.0:16379:6379"


def test_stores_keep_their_data_in_named_volumes():
    base = load(BASE)
    for store in STORES:
        (volume,) = base["services"][store]["volumes"]
        assert volume.split(":")[0] in base["volumes"]


@pytest.mark.parametrize("name", STACKS)
def test_every_dependency_exists_and_is_health_checked(name):
    services = stack(name)["services"]
    for service in services.values():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services
            if condition["condition"] == "service_healthy":
                assert services[dependency]["healthcheck"]["test"]


@pytest.mark.parametrize("name", STACKS)
def test_every_named_volume_is_declared(name):
    config = stack(name)
    declared = set(config.get("volumes") or {})
    for service in config["services"].values():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared


def test_development_runs_api_with_reload_worker_and_subscriber():
    services = stack("development")["services"]
    assert set(ROLES) <= set(services)
    assert command(services["api"]).startswith("flask run")
    assert "--reload" in command(services["api"])
    assert command(services["worker"]) == (
        "celery -A worker:app worker --loglevel=${CELERY_LOG_LEVEL:-INFO}"
    )
    assert command(services["beat"]) == (
        "celery -A worker:app beat --loglevel=${CELERY_LOG_LEVEL:-INFO}"
        " --schedule /tmp/celerybeat-schedule"  # a writable place in any image
    )
    assert command(services["subscriber"]) == "flask subscribe"
    port = interpolate(services["api"]["ports"][0], {})
    assert port == "127.0.0.1:5000:5000"
    assert interpolate(services["api"]["ports"][0], {"FLASK_RUN_PORT": "8080"}).startswith(
        "127.0.0.1:8080:"
    )
    for role in ROLES:
        service = services[role]
        assert service["build"]["target"] == "dev"
        assert service["environment"]["FLASK_ENV"] == "development"
        assert service["environment"]["MONGODB_HOST"] == "mongo:27017"
        assert service["environment"]["REDIS_HOST"] == "redis:6379"
        assert service["environment"]["RS_DATABUS_HOST"] == "broker"
        assert set(service["depends_on"]) == set(STORES)


def test_jupyter_adds_a_notebook_server_to_the_development_stack():
    services = stack("jupyter")["services"]
    assert set(ROLES) | {"jupyter"} <= set(services)
    jupyter = services["jupyter"]
    assert command(jupyter) == "jupyter notebook --port=8888 --no-browser --ip=0.0.0.0"
    assert jupyter["ports"] == ["${JUPYTER_RUN_HOST:-127.0.0.1}:${JUPYTER_RUN_PORT:-8888}:8888"]
    assert jupyter["environment"]["MONGODB_HOST"] == "mongo:27017"


def test_testing_runs_the_suite_on_real_stores():
    testing = load("docker-compose.testing.yml")["services"]
    tests = testing["tests"]
    assert "pytest" in command(tests).split()
    env = tests["environment"]
    assert env["FLASK_ENV"] == "testing"
    # A real server, which tests/conftest.py then uses instead of mongomock.
    assert env["MONGODB_HOST"].split(":")[0] == "mongo"
    assert env["REDIS_HOST"].split(":")[0] == "redis"
    assert env["TEST_RS_DATABUS_HOST"] == "broker"
    assert {name: dep["condition"] for name, dep in tests["depends_on"].items()} == {
        store: "service_healthy" for store in STORES
    }
    base = load(BASE)["services"]
    for store in STORES:
        assert testing[store]["image"] == base[store]["image"]
        assert "ports" not in testing[store]  # runs beside a development stack
        assert "volumes" not in testing[store]  # every run starts empty


def test_production_runs_gunicorn_worker_and_subscriber_with_sentry():
    services = stack("production")["services"]
    assert services["api"]["build"]["target"] == "production"
    assert "command" not in services["api"]  # the image's gunicorn command
    assert command(services["worker"]) == (
        "celery -A worker:app worker --loglevel=${CELERY_LOG_LEVEL:-ERROR}"
    )
    assert command(services["beat"]) == (
        "celery -A worker:app beat --loglevel=${CELERY_LOG_LEVEL:-ERROR}"
        " --schedule /tmp/celerybeat-schedule"  # a writable place in any image
    )
    assert command(services["subscriber"]) == "flask subscribe"
    for role in ROLES:
        env = services[role]["environment"]
        assert env["FLASK_ENV"] == "production"
        assert {"SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_RELEASE"} <= set(env)
        assert interpolate(env["SENTRY_ENVIRONMENT"], {}) == "production"
        assert services[role]["restart"] == "unless-stopped"
    assert interpolate(services["api"]["ports"][0], {}) == "127.0.0.1:5000:5000"


def test_monitoring_adds_prometheus_and_grafana_on_loopback_and_merges_the_api_workers():
    for name in ("monitoring", "monitoring-development"):
        services = stack(name)["services"]
        assert {"prometheus", "grafana"} <= set(services) and set(ROLES) <= set(services)
        api = services["api"]
        assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]  # empty per start
        assert api["environment"]["FLASK_ENV"] in ("production", "development")  # kept
    services = stack("monitoring")["services"]
    assert interpolate(services["prometheus"]["ports"][0], {}) == "127.0.0.1:9090:9090"
    assert interpolate(services["grafana"]["ports"][0], {}) == "127.0.0.1:3000:3000"


def test_entry_points_named_by_the_compose_files_exist():
    for module, attribute in (("app.py", "app"), ("worker.py", "app")):
        tree = ast.parse((ROOT / module).read_text())
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert attribute in assigned, f"{module} defines no `{attribute}`"


def test_flask_commands_named_by_the_compose_files_exist(app):
    used = {
        command(service).split()[1]
        for file in COMPOSE_FILES
        for service in load(file)["services"].values()
        if command(service).startswith("flask ")
    }
    builtin = {cli.run_command.name, cli.shell_command.name, cli.routes_command.name}
    assert used - set(app.cli.list_commands(None)) - builtin == set()


def test_every_variable_the_compose_files_use_is_in_env_example():
    used = {
        match["name"]
        for file in COMPOSE_FILES
        for match in VARIABLE.finditer((ROOT / file).read_text())
    }
    assert used - env_example_names() == set()


def test_the_jupyter_command_is_installed_in_the_dev_image():
    # `jupyter notebook` is the `notebook` package's; the dev image has Pipfile.lock's packages.
    lock = json.loads((ROOT / "Pipfile.lock").read_text())
    assert "notebook" in {**lock["default"], **lock["develop"]}


def test_the_production_stack_with_env_example_as_its_env_file_uses_the_bundled_broker():
    """README says `cp .env.example .env`; compose then reads that file for `${...}`: its
    host-run values must not point the containers at themselves."""
    env = {
        name: value
        for name, _, value in (
            line.partition("=")
            for line in (ROOT / ".env.example").read_text().splitlines()
            if re.match(r"^\w+=", line)
        )
    }
    production = yaml.safe_load(interpolate((ROOT / "production.yml").read_text(), env))
    for role in ROLES:
        environment = production["services"][role]["environment"]
        assert environment["RS_DATABUS_HOST"] == "broker"
        assert environment["RS_DATABUS_SSL"] in ("0", 0)
        assert environment["SENTRY_ENVIRONMENT"] == "production"
