"""The Prometheus and Grafana overlay (monitoring.yml): Prometheus scrapes what the API serves,
Grafana's provisioning points at it, and every panel's query names a metric the service's
`/metrics` exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.api.helpers import body, load

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
PROMETHEUS_OWN = {"up"}  # series Prometheus writes itself for each target
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
KEYWORDS |= {"and", "or", "unless"}
SAMPLES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations
    expr = LABEL_LISTS.sub("", expr)  # by (...), on (...), ...
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        called = expr[match.end() :].lstrip().startswith("(")
        if not called and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def test_the_query_parser_finds_metrics_only():
    expr = (
        "histogram_quantile(0.95, sum by (le, engine) (rate(recommender_engine_seconds_bucket"
        '{endpoint="/x", status=~"4..|5.."}[5m]))) / on (engine) group_left max(up) or vector(1)'
    )
    assert metric_names(expr) == {"recommender_engine_seconds_bucket", "up"}


def exported(client) -> set[str]:
    """The sample names `GET /metrics` can carry: each family it declares, by its type."""
    text = client.get("/metrics").get_data(as_text=True)
    families = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    names = set()
    for family, kind in families:
        base = family.removesuffix("_total") if kind == "counter" else family
        names |= {base + suffix for suffix in SAMPLES.get(kind, ("",))}
    return names


def panel_queries() -> dict[str, list[str]]:
    queries = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries[f"{path.name}: {panel['title']}"] = [t["expr"] for t in panel["targets"]]
    return queries


def test_every_panel_queries_metrics_the_service_exports(client):
    load()  # a few requests first, as a running service has answered
    client.post("/recommendations", json=body(client_id="user_dashboard"))
    client.post("/user_actions", json={})
    known = exported(client) | PROMETHEUS_OWN
    queries = panel_queries()
    assert len(queries) >= 8
    for panel, exprs in queries.items():
        assert exprs, panel
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{panel}: {expr}"
            assert names <= known, f"{panel}: {names - known} is not exported"


def test_prometheus_scrapes_the_api_and_grafana_reads_that_prometheus():
    compose = yaml.safe_load((ROOT / "monitoring.yml").read_text())["services"]
    [job] = yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["api:5000"]}]  # the API container's port
    datasources = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    [source] = yaml.safe_load(datasources.read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose
    for path in DASHBOARDS.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == source["uid"]
            assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    provider = MONITORING / "grafana" / "provisioning" / "dashboards" / "recommender.yml"
    [dashboards] = yaml.safe_load(provider.read_text())["providers"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in compose["grafana"]["volumes"][:2])
    assert mounts["./monitoring/grafana/dashboards"] == dashboards["options"]["path"]
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    for volume in compose["prometheus"]["volumes"] + compose["grafana"]["volumes"]:
        source_path = volume.split(":")[0]
        if source_path.startswith("./"):
            assert (ROOT / source_path).exists(), source_path
