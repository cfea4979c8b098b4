# syntax=docker/dockerfile:1.7
# Images of the CLPM Python services and of the `migrate` job: one Dockerfile, one target per image.
# Build from the repository root (the uv workspace and uv.lock live there). SERVICE_PACKAGE names
# the workspace package the `build` stage installs, SERVICE_SRC its sources (docker-compose.yml
# passes both, next to the target):
#   docker build --target data-streaming --build-arg SERVICE_PACKAGE=clpm-data-streaming \
#     --build-arg SERVICE_SRC=services/data_streaming/src -t clpm/data-streaming .
#   docker build --target aggregation --build-arg SERVICE_PACKAGE=clpm-aggregation \
#     --build-arg SERVICE_SRC=services/aggregation/src -t clpm/aggregation .
#   docker build --target kpi-worker --build-arg SERVICE_PACKAGE=clpm-kpi-worker \
#     --build-arg SERVICE_SRC=services/kpi_worker/src -t clpm/kpi-worker .
#   docker build --target diagnostics --build-arg SERVICE_PACKAGE=clpm-diagnostics \
#     --build-arg SERVICE_SRC=services/diagnostics/src -t clpm/diagnostics .
#   docker build --target api-gateway --build-arg SERVICE_PACKAGE=clpm-api-gateway \
#     --build-arg SERVICE_SRC=services/api_gateway/src -t clpm/api-gateway .
#   docker build --target migrate --build-arg SERVICE_PACKAGE=clpm-shared -t clpm/migrate .
# Development images (every workspace package editable, for docker-compose.dev.yml; no build args):
#   docker build --target <image>-dev -t clpm/<image>:dev .     e.g. --target api-gateway-dev
#
# Stages: base    - the pinned Python and the non-root user (uid 10001) every image runs as;
#         uv      - the pinned uv and the workspace's manifests and lock;
#         build   - locked third-party dependencies of SERVICE_PACKAGE first (cached layer),
#                   then the workspace package(s), installed non-editable into /opt/clpm/venv;
#         runtime - base plus that virtualenv only: no uv, no compilers;
#         dev     - every workspace package editable from /src (source mounts + reload);
#         <image>, <image>-dev - what differs per image: ENV defaults, EXPOSE, HEALTHCHECK, CMD.
# Each image target first imports what its CMD runs, so a build with another image's
# SERVICE_PACKAGE fails instead of shipping. The last stage is an image target, never a dev one.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
RUN groupadd --system --gid 10001 clpm \
 && useradd --system --uid 10001 --gid clpm --home-dir /var/lib/clpm --create-home \
      --shell /usr/sbin/nologin clpm
ENV PATH=/opt/clpm/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CLPM_DATA_DIR=/var/lib/clpm

FROM base AS uv
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/clpm/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/data_streaming/pyproject.toml services/data_streaming/
COPY services/aggregation/pyproject.toml services/aggregation/
COPY services/kpi_worker/pyproject.toml services/kpi_worker/
COPY services/diagnostics/pyproject.toml services/diagnostics/
COPY services/api_gateway/pyproject.toml services/api_gateway/

FROM uv AS build
ARG SERVICE_PACKAGE
ARG SERVICE_SRC=shared/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace \
      --package "${SERVICE_PACKAGE:?build with --build-arg SERVICE_PACKAGE=<workspace package>}"
COPY shared/src shared/src
COPY ${SERVICE_SRC} ${SERVICE_SRC}
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "${SERVICE_PACKAGE}"

FROM base AS runtime
COPY --from=build /opt/clpm/venv /opt/clpm/venv
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/clpm
USER clpm:clpm

FROM uv AS dev
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --all-packages
COPY shared/ shared/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages
USER clpm:clpm

# ---------------------------------------------------------------- development images
FROM dev AS data-streaming-dev
CMD ["python", "-m", "data_streaming_service"]

FROM dev AS aggregation-dev
CMD ["python", "-m", "clpm_aggregation"]

FROM dev AS kpi-worker-dev
CMD ["python", "-m", "clpm_kpi_worker"]

FROM dev AS diagnostics-dev
ENV DIAG_HOST=0.0.0.0 \
    DIAG_PORT=8050
EXPOSE 8050
CMD ["python", "-m", "clpm_diagnostics"]

FROM dev AS api-gateway-dev
ENV API_HOST=0.0.0.0 \
    API_PORT=8080
EXPOSE 8080
CMD ["python", "-m", "clpm_api_gateway"]

# ---------------------------------------------------------------- images
FROM runtime AS data-streaming
RUN python -c "import data_streaming_service"
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "clpm_shared.healthcheck", "data-streaming"]
CMD ["python", "-m", "data_streaming_service"]

FROM runtime AS aggregation
RUN python -c "import clpm_aggregation"
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "clpm_shared.healthcheck", "aggregation"]
CMD ["python", "-m", "clpm_aggregation"]

FROM runtime AS kpi-worker
RUN python -c "import clpm_kpi_worker"
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "clpm_shared.healthcheck", "kpi-worker"]
CMD ["python", "-m", "clpm_kpi_worker"]

FROM runtime AS diagnostics
RUN python -c "import clpm_diagnostics"
ENV DIAG_HOST=0.0.0.0 \
    DIAG_PORT=8050
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "clpm_shared.healthcheck", "diagnostics"]
CMD ["python", "-m", "clpm_diagnostics"]

# The one-shot `migrate` job: `alembic -c migrations/alembic.ini upgrade head` against the
# database of clpm_shared.config (POSTGRES_* or DATABASE_URL), then exit.
FROM runtime AS migrate
RUN python -c "import alembic, clpm_shared"
COPY migrations/ /opt/clpm/app/migrations/
WORKDIR /opt/clpm/app
# A one-shot job: its exit status is its health; `alembic current` shows where the schema is.
HEALTHCHECK NONE
CMD ["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"]

FROM runtime AS api-gateway
RUN python -c "import clpm_api_gateway"
ENV API_HOST=0.0.0.0 \
    API_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "clpm_shared.healthcheck", "api-gateway"]
CMD ["python", "-m", "clpm_api_gateway"]
