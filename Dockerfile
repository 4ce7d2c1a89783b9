# One image for the Python services: reader, loader, dbt, dashboard (and, in the stack
# test only, the embedded ClickHouse stand-in). Builds with or without BuildKit.
# Multi-stage: the build stage makes the virtualenv; the runtime stage has no compiler.
#
#   docker build --build-arg GIT_COMMIT=<commit> -t wiki-events:<commit> .
# deploy/bin/stack builds it so, as the image of the checked-out commit (`wiki-events
# --version`, `wiki-events status` and the image's label show that commit).
# The dependencies are installed in a layer of their own, before the sources are copied:
# an upgrade that changes only the code rebuilds from there, not from the wheels.
# Build arguments, for a machine that reaches no registry (the stack test's):
#   BASE_IMAGE       the Python base (default the official python image)
#   WHEELHOUSE       a wheelhouse (URL or folder): every package installed from it alone,
#                    offline, and no compiler installed (every dependency ships wheels);
#                    an http:// one is trusted as given (pip ignores plain-HTTP links)
# The stack test builds on a debootstrapped Debian base with the wheels it made on the
# host, served over HTTP (tests/stack/build_images.sh; on the stand-in VM the same).
ARG BASE_IMAGE=python:3.11.10-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG WHEELHOUSE=""
ENV PIP_NO_CACHE_DIR=1
RUN if [ -z "$WHEELHOUSE" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends build-essential \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python3 -m venv /opt/venv \
 && python3 -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && if [ -n "$WHEELHOUSE" ]; then \
      host="$(echo "$WHEELHOUSE" | sed -n 's#^http://\([^/:]*\).*#\1#p')" \
      && /opt/venv/bin/pip install --no-index --find-links "$WHEELHOUSE" ${host:+--trusted-host "$host"} \
        -c constraints.txt -r /tmp/requirements.txt ; \
    else \
      /opt/venv/bin/pip install --upgrade pip \
      && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt ; \
    fi
COPY README.md ./
COPY wiki_core wiki_core
COPY wiki_events wiki_events
COPY local_clickhouse local_clickhouse
COPY reader reader
COPY loader loader
COPY dash_app dash_app
COPY dumps dumps
COPY transform transform
# the project itself, its dependencies already there (the layer above)
RUN if [ -n "$WHEELHOUSE" ]; then \
      host="$(echo "$WHEELHOUSE" | sed -n 's#^http://\([^/:]*\).*#\1#p')" \
      && /opt/venv/bin/pip install --no-index --find-links "$WHEELHOUSE" ${host:+--trusted-host "$host"} \
        --no-deps . ; \
    else \
      /opt/venv/bin/pip install --no-deps . ; \
    fi

FROM ${BASE_IMAGE} AS runtime
ARG GIT_COMMIT=""
LABEL org.opencontainers.image.revision="${GIT_COMMIT}"
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
    WIKI_DBT_PROJECT=/app/wiki_dbt \
    WIKI_EVENTS_COMMIT=${GIT_COMMIT}
RUN mkdir -p /data && chown wiki:wiki /data
USER wiki
VOLUME ["/data"]
ENTRYPOINT ["wiki-events"]
CMD ["--help"]
