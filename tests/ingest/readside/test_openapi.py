from __future__ import annotations

import asyncpg
import httpx
import jsonschema
import redis.asyncio as aioredis
from starlette.routing import Route

from ingest.readside.openapi import RESULTS_SCHEMA, VOTE_STATUS_SCHEMA, read_paths
from ingest.readside.routes import ReadSide
from ingest.settings import IngestSettings
from tests.support.readside import record_vote
from votecontract.names import StreamNames


def test_every_read_route_is_documented(read_settings: IngestSettings) -> None:
    routes = ReadSide(read_settings).routes()
    documented = set(read_paths())
    assert {route.path for route in routes if isinstance(route, Route)} == documented


def test_schemas_are_valid_json_schema() -> None:
    for schema in (RESULTS_SCHEMA, VOTE_STATUS_SCHEMA):
        jsonschema.Draft202012Validator.check_schema(schema)


async def test_responses_match_their_schemas(
    read_http: httpx.AsyncClient,
    pg: asyncpg.Connection,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    await record_vote(pg, "1-0", "cats", "v1")
    pending = await redis_client.xadd(stream_names.stream, {"option": "dogs", "accepted_ms": "5"})
    jsonschema.validate((await read_http.get("/results")).json(), RESULTS_SCHEMA)
    for vote_id in ("1-0", pending):
        jsonschema.validate((await read_http.get(f"/votes/{vote_id}")).json(), VOTE_STATUS_SCHEMA)
