"""A migration role that owns the schema and an application role with only what processor Jobs
and the read endpoints use (processor/grants.sql). The roles are cluster-wide, so each test
session creates its own, uniquely named, and drops them (and their database) at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.job import Job
from processor.migrate import migrate
from processor.settings import ProcessorSettings
from tests.support.databases import TEST_PG_ADMIN_URL, admin_execute, dsn_with_database
from tests.support.ingest_app import make_settings, running_app
from tests.support.votestate import OPTIONS
from votecontract.names import StreamNames

pytestmark = pytest.mark.security


@dataclass(frozen=True)
class Roles:
    migrator: str
    app: str
    database: str
    # The roles log in with a password, as in production (the loopback trust that CI's
    # PostgreSQL gives covers only the `postgres` superuser).
    password: str = uuid.uuid4().hex

    def url(self, role: str) -> str:
        base = dsn_with_database(TEST_PG_ADMIN_URL, self.database)
        return base.replace("//postgres@", f"//{role}:{self.password}@", 1)


@pytest.fixture(scope="module")
def roles() -> Iterator[Roles]:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    roles = Roles(f"vote_migrator_{suffix}", f"vote_app_{suffix}", f"vote_test_roles_{suffix}")
    for role in (roles.migrator, roles.app):
        asyncio.run(admin_execute(f"CREATE ROLE {role} LOGIN PASSWORD '{roles.password}'"))
    try:
        asyncio.run(admin_execute(f"CREATE DATABASE {roles.database} OWNER {roles.migrator}"))
        asyncio.run(migrate(roles.url(roles.migrator), roles.app))
        yield roles
    finally:
        asyncio.run(admin_execute(f"DROP DATABASE IF EXISTS {roles.database} WITH (FORCE)"))
        asyncio.run(admin_execute(f"DROP ROLE IF EXISTS {roles.app}, {roles.migrator}"))


async def test_tables_belong_to_the_migration_role(roles: Roles) -> None:
    conn = await asyncpg.connect(roles.url(roles.migrator))
    try:
        owners = await conn.fetch(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    assert {row["tableowner"] for row in owners} == {roles.migrator}
    assert len(owners) == 5  # the four tables of the contract and schema_migrations


async def test_a_job_the_read_endpoints_and_the_metrics_work_as_the_app_role(
    roles: Roles, redis_url: str, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    app_url = roles.url(roles.app)
    poison = {"option": "x", "voter_id": "b", "accepted_ms": "1"}
    await redis_client.xadd(stream_names.stream, poison)
    ingest = make_settings(redis_url, stream_names, database_url=app_url)
    async with running_app(ingest) as (_, http):
        ids = []
        for voter, option in (("ann", "cats"), ("bob", "dogs"), ("ann", "dogs")):
            response = await http.post("/vote", json={"option": option, "voter_id": voter})
            ids.append(response.headers["location"])
        settings = ProcessorSettings(
            redis_url=redis_url, database_url=app_url, names=stream_names, options=OPTIONS,
            consumer="job-app-role", max_runtime_s=30,
        )  # fmt: skip
        job = Job(settings)
        await job.run()
        assert (job.summary.recorded, job.summary.dead_lettered) == (3, 1)
        states = [(await http.get(location)).json() for location in ids]
        assert [s.get("ballot") for s in states] == ["superseded", "current", "current"]
        results = (await http.get("/results")).json()
        metrics = (await http.get("/metrics")).text  # the pipeline metrics' reads
    assert {o["option"]: o["votes"] for o in results["options"]} == {"cats": 0, "dogs": 2}
    assert 'vote_pipeline_reading_up{source="postgres"} 1.0' in metrics
    assert "vote_ballots 2.0" in metrics
    assert "vote_newest_recorded_latency_seconds " in metrics


FORBIDDEN = {
    "DROP TABLE": "DROP TABLE vote_events",
    "ALTER TABLE": "ALTER TABLE ballots ADD COLUMN note text",
    "TRUNCATE": "TRUNCATE tally",
    "DELETE": "DELETE FROM vote_events",
    "UPDATE history": "UPDATE vote_events SET option = 'dogs'",
    "UPDATE a ballot's voter": "UPDATE ballots SET voter_id = 'eve'",
    "UPDATE a tally's option": "UPDATE tally SET option = 'fish'",
    "DELETE a dead letter": "DELETE FROM dead_letters",
    "write the migrations": "INSERT INTO schema_migrations VALUES (999, 'x', 'x')",
    "read the migrations": "SELECT * FROM schema_migrations",
    "CREATE TABLE": "CREATE TABLE public.mine (x int)",
    "CREATE FUNCTION": "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
}


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=list(FORBIDDEN))
async def test_the_app_role_is_refused_everything_else(roles: Roles, statement: str) -> None:
    conn = await asyncpg.connect(roles.url(roles.app))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_migrate_converges_the_grants_to_exactly_the_list(roles: Roles) -> None:
    owner = await asyncpg.connect(roles.url(roles.migrator))
    try:
        await owner.execute(f"GRANT DELETE ON vote_events TO {roles.app}")
        await migrate(roles.url(roles.migrator), roles.app)
        grants = await owner.fetch(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = $1",
            roles.app,
        )
    finally:
        await owner.close()
    assert {(row["table_name"], row["privilege_type"]) for row in grants} == {
        ("vote_events", "SELECT"), ("vote_events", "INSERT"),
        ("dead_letters", "SELECT"), ("dead_letters", "INSERT"),
        ("ballots", "SELECT"), ("ballots", "INSERT"),
        ("tally", "SELECT"), ("tally", "INSERT"),
    }  # fmt: skip
