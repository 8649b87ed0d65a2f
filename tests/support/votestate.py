"""What the tests compare: the expected result of a sequential fold, and the actual one."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID

OPTIONS = ("cats", "dogs")


def stream_id(entry_id: str | bytes) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, seq = text.split("-")
    return int(ms), int(seq)


@dataclass(frozen=True)
class Outcome:
    events: dict[tuple[int, int], tuple[str, str]]  # stream ID -> (option, voter)
    ballots: dict[str, tuple[str, tuple[int, int]]]  # voter -> (option, stream ID)
    tally: dict[str, int]  # option -> votes (options with 0 left out)


def fold(votes: Iterable[tuple[tuple[int, int], str, str]]) -> Outcome:
    """The reference semantics: apply votes one by one in stream-ID order, last cast wins."""
    events = {entry_id: (option, voter) for entry_id, option, voter in votes}
    ballots: dict[str, tuple[str, tuple[int, int]]] = {}
    for entry_id in sorted(events):
        option, voter = events[entry_id]
        ballots[voter] = (option, entry_id)
    tally = Counter(option for option, _ in ballots.values())
    return Outcome(events, ballots, dict(tally))


async def recorded(conn: asyncpg.Connection) -> Outcome:
    events = {
        (row["entry_ms"], row["entry_seq"]): (row["option"], row["voter_id"])
        for row in await conn.fetch("SELECT entry_ms, entry_seq, option, voter_id FROM vote_events")
    }
    ballots = {
        row["voter_id"]: (row["option"], (row["entry_ms"], row["entry_seq"]))
        for row in await conn.fetch("SELECT voter_id, option, entry_ms, entry_seq FROM ballots")
    }
    tally = {
        row["option"]: row["votes"]
        for row in await conn.fetch("SELECT option, votes FROM tally WHERE votes <> 0")
    }
    return Outcome(events, ballots, tally)


def random_votes(count: int, voters: int, rng: random.Random) -> list[tuple[str, str]]:
    return [(rng.choice(OPTIONS), f"voter-{rng.randrange(voters)}") for _ in range(count)]


async def add_votes(
    redis: aioredis.Redis, stream: str, votes: Sequence[tuple[str, str]]
) -> list[tuple[tuple[int, int], str, str]]:
    """XADD the votes as ingest does; return them with their stream IDs."""
    async with redis.pipeline(transaction=False) as pipe:
        for option, voter in votes:
            fields = {
                FIELD_OPTION: option,
                FIELD_VOTER_ID: voter,
                FIELD_ACCEPTED_MS: "1700000000000",
            }
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
        ids = await pipe.execute()
    return [
        (stream_id(entry_id), option, voter)
        for entry_id, (option, voter) in zip(ids, votes, strict=True)
    ]


async def group_lag(redis: aioredis.Redis, stream: str, group: str) -> int | None:
    for info in await redis.xinfo_groups(stream):
        if info["name"] in (group, group.encode()):
            lag = info["lag"]
            return None if lag is None else int(lag)
    raise AssertionError(f"group {group} not found")


async def votes_with_one_worn_out(
    redis: aioredis.Redis, stream: str, group: str
) -> tuple[list[tuple[tuple[int, int], str, str]], str]:
    """Two votes read by a consumer that "crashed"; the first delivered 4 times already."""
    votes = await add_votes(redis, stream, [("cats", "ann"), ("dogs", "bob")])
    await redis.xgroup_create(stream, group, "0")
    await redis.xreadgroup(group, "crashed", {stream: ">"})
    worn = "{}-{}".format(*votes[0][0])
    await redis.execute_command("XCLAIM", stream, group, "crashed", 0, worn, "RETRYCOUNT", 3)
    return votes, worn
