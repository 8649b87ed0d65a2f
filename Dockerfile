# syntax=docker/dockerfile:1
# One image, both services:
#   docker run IMAGE                      -> python -m ingest (listens on 0.0.0.0:8000)
#   docker run IMAGE processor            -> python -m processor (one drain-and-exit Job)
#   docker run IMAGE processor migrate    -> python -m processor migrate
# The Helm chart sets `command` explicitly for each pod.

# Pinned by version; bump both stages together.
FROM python:3.11.11-slim-bookworm AS builder

# Compilers only here, for dependencies that have no wheel on the target platform.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first, exactly as locked (versions and sha256 of every file, checked by pip):
# this layer depends on the lock alone, so a change to the sources rebuilds none of them.
# requirements/runtime.lock comes from scripts/lock-requirements.sh.
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip wheel --no-cache-dir --wheel-dir /wheels --require-hashes -r requirements/runtime.lock

# Then the project itself, without dependencies: the only wheel a source change rebuilds.
COPY pyproject.toml README.md ./
COPY votecontract ./votecontract
COPY ingest ./ingest
COPY processor ./processor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .


FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    # A container's network namespace is its own: listen on all of its interfaces.
    HOST=0.0.0.0 \
    PORT=8000

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

# Installs the builder's wheels only (no index, no compiler, no resolving: they are the locked
# set plus the project), without copying them in.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["python", "-m"]
CMD ["ingest"]
