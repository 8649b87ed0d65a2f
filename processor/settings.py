"""The processor Job's settings, read once from the environment at start-up."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from votecontract.environment import (
    Environ,
    env_float,
    env_int,
    process_environ,
)
from votecontract.names import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    DEFAULT_VOTE_OPTIONS,
    ENV_BATCH_SIZE,
    ENV_CLAIM_MIN_IDLE_MS,
    ENV_CONSUMER_NAME,
    ENV_DATABASE_APP_ROLE,
    ENV_JOB_NAME,
    ENV_MAX_DELIVERIES,
    ENV_MAX_RUNTIME_S,
    ENV_MIGRATE_WAIT_S,
    ENV_POSTGRES_WRITERS,
    ENV_READY_FILE,
    ENV_RETRY_BACKOFF_MAX_MS,
    ENV_RETRY_BACKOFF_MS,
    ENV_SHUTDOWN_GRACE_S,
    ENV_STALE_CONSUMER_IDLE_MS,
    ENV_TEST_STOP_AFTER_COMMIT,
    StreamNames,
)
from votecontract.shared_env import (
    database_url,
    log_format,
    redis_topology,
    redis_url,
    stream_names,
    vote_options,
)
from votecontract.topology import RedisTopology, shard_index


@dataclass(frozen=True)
class ProcessorSettings:
    """Everything one Job needs; docs/configuration.md describes each variable."""

    # Credentials live in the URLs: out of repr(), so a logged settings object never shows them.
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    options: tuple[str, ...] = DEFAULT_VOTE_OPTIONS
    # The names of the shard this Job drains (VOTE_SHARD of VOTE_SHARDS; the stream as given
    # when there is one shard, see votecontract/topology.py).
    names: StreamNames = field(default_factory=StreamNames)
    topology: RedisTopology = field(default_factory=RedisTopology)
    consumer: str = "processor"
    # Per transaction: fewer distinct voters per vote (ballot upserts) and fewer statements and
    # commits as batches grow, but the pipeline fills and drains more slowly. Paired runs of
    # 200k votes (2 writers): 10000 drained 21-50% faster than 5000 (PostgreSQL CPU -13%) and
    # 20-25% faster than 20000.
    batch_size: int = 10_000
    # Batches written at once, each on its own connection. A second backend keeps PostgreSQL
    # busy while the other waits for its commit; a third only waits on the ballot and tally row
    # locks the other two hold (concurrent batches share voters) and holds one more connection.
    # Measured on 2 cores (200k votes): 2 -> 70-71k, 3 -> 64k, 1 -> 52k votes/s.
    writers: int = 2
    claim_min_idle_ms: int = 60_000
    max_runtime_s: float = 600.0
    # After MAX_RUNTIME_S (or SIGTERM): time for the batches already read to commit and be
    # acked, then the Job exits whatever it waits on. Below the pod's
    # terminationGracePeriodSeconds (30 s in keda/ and the chart), so SIGKILL never comes first.
    shutdown_grace_s: float = 10.0
    max_deliveries: int = 5
    stale_consumer_idle_ms: int = 3_600_000
    ready_file: str | None = None
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 5_000
    log_format: str = "json"
    test_stop_after_commit: int | None = None
    # `migrate` only: the role the application connects as (DATABASE_APP_ROLE), and how long
    # the first connection is retried while the database starts (a bundled PostgreSQL and its
    # migration hook start together; initdb alone takes seconds).
    app_role: str | None = None
    migrate_wait_s: float = 300.0

    @classmethod
    def from_env(cls, env: Environ | None = None) -> ProcessorSettings:
        """Build the settings; raise SettingsError naming the first bad variable."""
        env = process_environ() if env is None else env
        backoff_ms = env_int(env, ENV_RETRY_BACKOFF_MS, cls.retry_backoff_ms, minimum=1)
        topology = redis_topology(env)
        return cls(
            redis_url=redis_url(env),
            database_url=database_url(env),
            options=vote_options(env),
            names=topology.streams(stream_names(env))[shard_index(env, topology.shards)],
            topology=topology,
            consumer=consumer_name(env),
            batch_size=env_int(env, ENV_BATCH_SIZE, cls.batch_size, minimum=1),
            writers=env_int(env, ENV_POSTGRES_WRITERS, cls.writers, minimum=1),
            claim_min_idle_ms=env_int(env, ENV_CLAIM_MIN_IDLE_MS, cls.claim_min_idle_ms),
            max_runtime_s=env_float(env, ENV_MAX_RUNTIME_S, cls.max_runtime_s, minimum=0.001),
            shutdown_grace_s=env_float(
                env, ENV_SHUTDOWN_GRACE_S, cls.shutdown_grace_s, minimum=0.1
            ),
            max_deliveries=env_int(env, ENV_MAX_DELIVERIES, cls.max_deliveries, minimum=1),
            stale_consumer_idle_ms=env_int(
                env, ENV_STALE_CONSUMER_IDLE_MS, cls.stale_consumer_idle_ms
            ),
            ready_file=env.get(ENV_READY_FILE, "").strip() or None,
            retry_backoff_ms=backoff_ms,
            retry_backoff_max_ms=env_int(
                env, ENV_RETRY_BACKOFF_MAX_MS, cls.retry_backoff_max_ms, minimum=backoff_ms
            ),
            log_format=log_format(env),
            test_stop_after_commit=optional_int(env, ENV_TEST_STOP_AFTER_COMMIT),
            app_role=env.get(ENV_DATABASE_APP_ROLE, "").strip() or None,
            migrate_wait_s=env_float(env, ENV_MIGRATE_WAIT_S, cls.migrate_wait_s, minimum=0),
        )


def consumer_name(env: Environ) -> str:
    """CONSUMER_NAME, else the Kubernetes Job name (stable across pod retries), else hostname."""
    for name in (ENV_CONSUMER_NAME, ENV_JOB_NAME):
        value = env.get(name, "").strip()
        if value:
            return value
    return socket.gethostname()


def optional_int(env: Environ, name: str) -> int | None:
    if not env.get(name, "").strip():
        return None
    return env_int(env, name, 0, minimum=1)
