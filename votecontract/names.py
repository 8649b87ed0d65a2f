"""The single definition of the names shared by ingest, processor, keda/ and helm/.

Environment variable names are part of the public interface (docs/configuration.md lists them
all); `tests/votecontract/test_names.py` and `tests/keda/test_manifests.py` check that the
manifests in `helm/` and `keda/` use exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass

ENV_REDIS_URL = "REDIS_URL"
ENV_DATABASE_URL = "DATABASE_URL"
ENV_VOTE_OPTIONS = "VOTE_OPTIONS"
ENV_VOTE_STREAM = "VOTE_STREAM"
ENV_VOTE_GROUP = "VOTE_GROUP"
ENV_MAX_BACKLOG = "MAX_BACKLOG"
ENV_LOG_FORMAT = "LOG_FORMAT"

# Redis topology and sharded streams (votecontract/topology.py, docs/redis-topologies.md).
ENV_REDIS_MODE = "REDIS_MODE"
ENV_REDIS_SENTINELS = "REDIS_SENTINELS"
ENV_REDIS_SENTINEL_MASTER = "REDIS_SENTINEL_MASTER"
ENV_REDIS_SENTINEL_USERNAME = "REDIS_SENTINEL_USERNAME"
ENV_REDIS_SENTINEL_PASSWORD = "REDIS_SENTINEL_PASSWORD"  # noqa: S105 (a name)
ENV_VOTE_SHARDS = "VOTE_SHARDS"
ENV_VOTE_SHARD = "VOTE_SHARD"

# Processor Job settings (also set by keda/ and helm/).
ENV_BATCH_SIZE = "BATCH_SIZE"
ENV_CLAIM_MIN_IDLE_MS = "CLAIM_MIN_IDLE_MS"
ENV_MAX_RUNTIME_S = "MAX_RUNTIME_S"
ENV_SHUTDOWN_GRACE_S = "SHUTDOWN_GRACE_S"
ENV_MAX_DELIVERIES = "MAX_DELIVERIES"
ENV_CONSUMER_NAME = "CONSUMER_NAME"
ENV_JOB_NAME = "JOB_NAME"
ENV_READY_FILE = "READY_FILE"
ENV_STALE_CONSUMER_IDLE_MS = "STALE_CONSUMER_IDLE_MS"
ENV_POSTGRES_WRITERS = "POSTGRES_WRITERS"
ENV_RETRY_BACKOFF_MS = "RETRY_BACKOFF_MS"
ENV_RETRY_BACKOFF_MAX_MS = "RETRY_BACKOFF_MAX_MS"
# `python -m processor migrate`: seconds within which it finishes, waits and retries included.
ENV_MIGRATE_WAIT_S = "MIGRATE_WAIT_S"
# Test-only fault hook: the processor stops itself (SIGSTOP) right after its N-th COMMIT, before
# the XACK, so a crash test can SIGKILL it exactly there. Never set in manifests.
ENV_TEST_STOP_AFTER_COMMIT = "PROCESSOR_TEST_STOP_AFTER_COMMIT"

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/votes"
DEFAULT_VOTE_OPTIONS = ("cats", "dogs")
DEFAULT_VOTE_STREAM = "votes"
DEFAULT_VOTE_GROUP = "processors"
DEAD_LETTER_SUFFIX = ":dead"

# Fields of one vote entry in the stream.
FIELD_OPTION = "option"
FIELD_VOTER_ID = "voter_id"
FIELD_ACCEPTED_MS = "accepted_ms"

# Fields a dead-letter entry adds to the original ones.
FIELD_DEAD_ORIGINAL_ID = "dead_original_id"
FIELD_DEAD_REASON = "dead_reason"


@dataclass(frozen=True, slots=True)
class StreamNames:
    """The vote stream, its consumer group and its dead-letter stream."""

    stream: str = DEFAULT_VOTE_STREAM
    group: str = DEFAULT_VOTE_GROUP

    @property
    def dead_letter(self) -> str:
        return self.stream + DEAD_LETTER_SUFFIX


# Ingest service settings.
ENV_HOST = "HOST"
ENV_PORT = "PORT"
ENV_MAX_BODY_BYTES = "MAX_BODY_BYTES"
ENV_REDIS_TIMEOUT_S = "REDIS_TIMEOUT_S"
ENV_BACKLOG_REFRESH_S = "BACKLOG_REFRESH_S"
ENV_RETRY_AFTER_S = "RETRY_AFTER_S"
# When ingest answers 202 (docs/guarantees.md): `memory` (Redis applied the write), `fsync`
# (appendfsync always, checked at start-up and on every backlog refresh) or `replica`
# (WAIT for ACK_REPLICAS replicas, at most ACK_REPLICA_TIMEOUT_S).
ENV_ACK_DURABILITY = "ACK_DURABILITY"
ENV_ACK_REPLICAS = "ACK_REPLICAS"
ENV_ACK_REPLICA_TIMEOUT_S = "ACK_REPLICA_TIMEOUT_S"

# Read side of the ingest service (results, vote status, page).
ENV_DATABASE_POOL_SIZE = "DATABASE_POOL_SIZE"
ENV_DATABASE_TIMEOUT_S = "DATABASE_TIMEOUT_S"
ENV_RESULTS_MAX_AGE_S = "RESULTS_MAX_AGE_S"

# Pipeline metrics of ingest's /metrics (docs/monitoring.md): a scrape reuses readings younger
# than the max age and waits at most the timeout for fresh ones.
ENV_PIPELINE_METRICS_MAX_AGE_S = "PIPELINE_METRICS_MAX_AGE_S"
ENV_PIPELINE_METRICS_TIMEOUT_S = "PIPELINE_METRICS_TIMEOUT_S"

# Security (docs/security.md): the PostgreSQL role `python -m processor migrate` grants the
# application's privileges to, and uvicorn's per-worker limits of `python -m ingest`.
ENV_DATABASE_APP_ROLE = "DATABASE_APP_ROLE"
ENV_LIMIT_CONCURRENCY = "LIMIT_CONCURRENCY"
ENV_MAX_HEADER_BYTES = "MAX_HEADER_BYTES"
ENV_KEEP_ALIVE_S = "KEEP_ALIVE_S"
# uvicorn's own variable (read by uvicorn.Config, not by ingest): the proxies whose
# X-Forwarded-Proto/-For it believes; the chart sets it behind an Ingress.
ENV_FORWARDED_ALLOW_IPS = "FORWARDED_ALLOW_IPS"
