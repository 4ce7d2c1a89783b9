# One image for the Python services: reader, loader, dbt, dashboard (and, in the stack
# test only, the embedded ClickHouse stand-in). Builds with or without BuildKit.
# Multi-stage: the build stage makes the virtualenv; the runtime stage has no compiler.
#
#   docker build -t wiki-events:VERSION .
# The stack test (tests/stack/build_images.sh) builds it on a debootstrapped Debian base
# (BASE_IMAGE) from wheels it made on the host (deploy/wheels/, PIP_OFFLINE=1), because
# its machine reaches no container registry.
ARG BASE_IMAGE=python:3.11.10-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_OFFLINE=0
RUN if [ "$PIP_OFFLINE" != 1 ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends build-essential \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY wiki_core wiki_core
COPY wiki_events wiki_events
COPY local_clickhouse local_clickhouse
COPY reader reader
COPY loader loader
COPY dash_app dash_app
COPY dumps dumps
# empty in the repository; holds the stack test's wheels during its build only
COPY deploy/wheels /wheels
RUN python3 -m venv /opt/venv \
 && if [ "$PIP_OFFLINE" = 1 ]; then \
      /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -c constraints.txt . ; \
    else \
      /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
      && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt . ; \
    fi

FROM ${BASE_IMAGE} AS runtime
RUN groupadd --system --gid 10001 wiki \
 && useradd --system --uid 10001 --gid wiki --home-dir /app --shell /usr/sbin/nologin wiki
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=wiki:wiki wiki_dbt wiki_dbt
COPY --chown=wiki:wiki deploy/rabbitmq deploy/rabbitmq
COPY --chown=wiki:wiki deploy/bin deploy/bin
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
