# syntax=docker/dockerfile:1
# One image for the Python services: reader, loader, dbt, dashboard.
# Multi-stage: the build stage compiles wheels; the runtime stage has no compiler.

FROM python:3.11.10-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY wiki_events wiki_events
COPY local_clickhouse local_clickhouse
COPY reader reader
COPY dash_app dash_app
COPY dumps dumps
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11.10-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 wiki \
 && useradd --system --uid 10001 --gid wiki --home-dir /app --shell /usr/sbin/nologin wiki
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=wiki:wiki wiki_dbt wiki_dbt
COPY --chown=wiki:wiki deploy/rabbitmq deploy/rabbitmq
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WIKI_EVENTS_DATA=/data \
    DBT_PROFILES_DIR=/app/wiki_dbt \
    WIKI_DBT_PROJECT=/app/wiki_dbt
RUN mkdir -p /data && chown wiki:wiki /data
USER wiki
VOLUME ["/data"]
ENTRYPOINT ["wiki-events"]
CMD ["--help"]
