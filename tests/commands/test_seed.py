"""`flask seed seed` and `flask seed seed_faker` through click's runner on the mongomock store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from recommender.models import Category, Recommendation, Service, User, UserAction


def test_seed_writes_a_synthetic_marketplace_with_sessions(app):
    result = app.test_cli_runner().invoke(
        args=["seed", "seed", "--users", "40", "--services", "25", "--sessions", "30"]
    )
    assert result.exit_code == 0, result.output
    assert User.objects.count() == 40
    assert Service.objects.count() == 25
    assert Recommendation.objects.count() > 0
    assert UserAction.objects.count() > 0
    assert f"{Recommendation.objects.count()} recommendations" in result.output


def test_seed_is_reproducible(app):
    runner = app.test_cli_runner()
    args = ["seed", "seed", "--users", "20", "--services", "15", "--sessions", "0", "--seed", "7"]
    runner.invoke(args=args)
    first = [(u.id, tuple(u.accessed_services)) for u in User.objects.order_by("id")]
    runner.invoke(args=args)
    assert [(u.id, tuple(u.accessed_services)) for u in User.objects.order_by("id")] == first


def test_seeding_is_refused_in_production(app):
    app.config["ENV_NAME"] = "production"
    result = app.test_cli_runner().invoke(args=["seed", "seed", "--users", "5"])
    assert result.exit_code != 0
    assert "refused in production" in result.output
    assert User.objects.count() == 0


def test_seed_faker_saves_the_catalogue_words_and_the_generator_uses_them(app, tmp_path):
    runner = app.test_cli_runner()
    runner.invoke(args=["seed", "seed", "--users", "10", "--services", "10", "--sessions", "0"])
    for index, category in enumerate(Category.objects):
        category.name = f"Real category {index}"
        category.save()
    path = tmp_path / "words.json"
    result = runner.invoke(args=["seed", "seed_faker", "--output", str(path)])
    assert result.exit_code == 0, result.output
    lists = json.loads(path.read_text())
    assert lists["categories"] == sorted(c.name for c in Category.objects)
    assert lists["tagline_words"]
    assert all(len(pair) == 2 for pair in lists["trls"])

    code = (
        "from recommender.synthetic import generate_marketplace;"
        "print('|'.join(c['name'] for c in generate_marketplace(5, 5, 1)['categories']))"
    )
    env = {**os.environ, "SYNTHETIC_WORD_LISTS": str(path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.strip().split("|")) <= set(lists["categories"])


def test_seed_faker_on_an_empty_catalogue_says_why(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["seed", "seed_faker", "--output", str(tmp_path / "w.json")]
    )
    assert result.exit_code != 0
    assert "load a dump first" in result.output
