"""`flask demo` as a newcomer runs it: a real process, no external services, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.network import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_demo_seeds_trains_serves_and_stops_cleanly():
    port = free_port()
    flask = Path(sys.executable).with_name("flask")
    env = {**os.environ, "FLASK_ENV": "development", "MONGODB_HOST": "127.0.0.1:1"}
    demo = subprocess.Popen(
        [str(flask), "--app", "app", "demo", "--port", str(port), "--users", "60",
         "--services", "30", "--sessions", "80", "--seed", "3"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line, "demo exited early:\n" + "".join(output)
            output.append(line)
            if "Swagger UI:" in line:
                break
        url, dashboard = re.search(r"(http://\S+)/  Dashboard: (http://\S+)", output[-1]).groups()
        assert dashboard == f"{url}/dashboard/"
        assert any("Seeded 30 services, 60 users" in line for line in output)
        status, health = call(f"{url}/health")
        # No broker in the demo: the databus is off, not DOWN, and nothing tries to reach it.
        assert (status, health["status"]) == (200, "UP"), health
        assert health["databus"] == {"status": "DISABLED"}
        assert health["database"]["status"] == "UP"
        assert health["training"]["model_versions"]  # the engines were trained
        status, answer = call(
            f"{url}/recommendations",
            {
                "user_id": "",
                "unique_id": str(uuid.uuid4()),
                "timestamp": "2024-02-21T15:19:43.512+0100",
                "visit_id": None,
                "page_id": "/services",
                "search_data": {},
            },
        )
        assert status == 200
        assert len(answer["recommendations"]) == 3
        assert answer["engine_version"] == "Popularity"
        assert call(f"{url}/swagger.json")[0] == 200
        with urllib.request.urlopen(dashboard, timeout=30) as page:
            shown = page.read().decode()
        assert "<h1>Overview</h1>" in shown and "No update yet" in shown
    finally:
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest
    assert "Stopping" in rest
    assert "61613" not in "".join(output) + rest  # no publisher retrying the broker
