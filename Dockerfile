# syntax=docker/dockerfile:1
# The API image: wheels are built in a throw-away stage, the runtime stage holds only what runs.
#   docker build -t carbon-points .
#   docker compose up        (see docker-compose.yml: the API with PostgreSQL 16 and Redis 7)

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- build: every wheel we need
FROM python:${PYTHON_VERSION}-slim AS build
# Compilers only here, for any dependency without a binary wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --upgrade pip wheel \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

# ---------------------------------------------------------------- runtime: slim, non-root
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARBON_ENVIRONMENT=production \
    CARBON_DATA_DIR=/app/data
RUN groupadd --system --gid 10001 carbon \
 && useradd --system --uid 10001 --gid carbon --home-dir /app --shell /usr/sbin/nologin carbon
WORKDIR /app
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels carbon-points
# Migrations are read from the working directory by `carbon-points serve` / `migrate`.
COPY --chown=carbon:carbon alembic.ini ./
COPY --chown=carbon:carbon alembic ./alembic
RUN mkdir -p /app/data && chown carbon:carbon /app/data
USER carbon:carbon
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# `serve` applies the migrations, then serves. Set CARBON_DATABASE_URL and CARBON_REDIS_URL.
CMD ["carbon-points", "serve", "--host", "0.0.0.0", "--port", "8000"]
