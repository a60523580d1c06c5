# syntax=docker/dockerfile:1
# The recommender image. One image, three roles (see docs/architecture.md):
#   API (the default command, gunicorn), Celery worker (`celery -A worker:app worker`),
#   databus subscriber (`flask subscribe`).
#
#   docker build -t recommender .                   # target `production` (the last stage)
#   docker build --target dev -t recommender:dev .  # plus the dev packages (pytest, notebooks)
#
# Packages come from Pipfile.lock only, each file checked against the lock's hashes.
# PIP_INDEX_URL: the package index (default: pip's own default index).
# PIP_EXTRA_INDEX_URL: Pipfile.lock pins torch's CPU build (`torch==2.13.0+cpu`), which is on
#   PyTorch's CPU wheel index, not on the default index: pass that index here. Hash checking means
#   an extra index can only supply the very files the lock names. The lock holds torch's x86_64
#   wheel only, so the image is linux/amd64.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /app


# --- Production packages: Pipfile.lock's [packages] into the virtualenv /opt/venv ---
FROM base AS builder
ARG PIPENV_VERSION=2026.10.3
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
COPY Pipfile Pipfile.lock ./
# pipenv turns the lock into hashed requirement lists; pip installs them, nothing else (--no-deps).
# The default index is asked of pip itself, so no registry is named in this file.
RUN PIP_INDEX_URL="${PIP_INDEX_URL:-$(python -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)')}" \
    && export PIP_INDEX_URL \
    && if [ -z "${PIP_EXTRA_INDEX_URL:-}" ]; then unset PIP_EXTRA_INDEX_URL; fi \
    && pip install "pipenv==${PIPENV_VERSION}" \
    && pipenv requirements --hash > /tmp/requirements.txt \
    && pipenv requirements --dev-only --hash > /tmp/requirements-dev.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements.txt


# --- Dev packages on top: Pipfile.lock's [dev-packages] (tests, notebooks) ---
FROM builder AS dev-builder
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
RUN PIP_INDEX_URL="${PIP_INDEX_URL:-$(python -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)')}" \
    && export PIP_INDEX_URL \
    && if [ -z "${PIP_EXTRA_INDEX_URL:-}" ]; then unset PIP_EXTRA_INDEX_URL; fi \
    && /opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements-dev.txt


# --- What every role shares: a non-root user and the service's settings ---
FROM base AS app
RUN groupadd --system --gid 10001 recommender \
    && useradd --system --uid 10001 --gid recommender --create-home --home-dir /home/recommender \
        --shell /usr/sbin/nologin recommender \
    && install -d -o recommender -g recommender /app/runs
ENV PATH="/opt/venv/bin:${PATH}" \
    FLASK_ENV=production \
    FLASK_APP=app.py \
    FLASK_RUN_HOST=0.0.0.0 \
    FLASK_RUN_PORT=5000 \
    MONGODB_HOST=mongo:27017 \
    REDIS_HOST=redis:6379
EXPOSE 5000


# --- Development and tests: every package, the whole tree (compose mounts the source over it) ---
FROM app AS dev
ENV FLASK_ENV=development
# The dashboard's browser tests drive Debian's Chromium through its chromedriver (tests/browser).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium chromium-driver \
    && rm -rf /var/lib/apt/lists/*
COPY --from=dev-builder /opt/venv /opt/venv
COPY --chown=recommender:recommender . .
USER 10001:10001
CMD ["flask", "run", "--reload"]


# --- Production (the default target): production packages and the service's code only ---
FROM app AS production
COPY --from=builder /opt/venv /opt/venv
COPY app.py worker.py gunicorn.conf.py ./
COPY recommender/ recommender/
USER 10001:10001
# Healthy while GET /health answers 200 (503 names what is DOWN: database, worker, databus, engines).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:5000/health', timeout=8)"]
CMD ["gunicorn", "app:app"]
