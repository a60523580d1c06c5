"""Celery entry point: `celery -A worker:app worker`."""

from recommender import create_app
from recommender.celery_app import celery
from recommender.monitoring import init_sentry

init_sentry(with_celery=True)
flask_app = create_app()
app = celery
