"""REDIS_MODE, the sentinel variables, VOTE_SHARDS/VOTE_SHARD and the shard layout rules."""

from __future__ import annotations

import binascii
import subprocess
import sys

import pytest

from votecontract.environment import SettingsError
from votecontract.names import StreamNames
from votecontract.shared_env import redis_topology
from votecontract.topology import (
    RedisTopology,
    has_hash_tag,
    layout_key,
    shard_index,
    voter_shard,
)

BASE = StreamNames("votes", "processors")


def slot(key: str) -> int:
    """Redis Cluster's key slot (CRC16-XMODEM of the hash tag or the key, mod 16384)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start >= 0 and end > start + 1:
        key = key[start + 1 : end]
    return binascii.crc_hqx(key.encode(), 0) % 16384


def test_defaults_are_todays_single_standalone_stream() -> None:
    topology = RedisTopology.from_env({})
    assert topology == RedisTopology()
    assert topology.streams(BASE) == (BASE,)
    assert topology.streams(BASE)[0].dead_letter == "votes:dead"


def test_sentinel_mode_reads_its_variables() -> None:
    topology = RedisTopology.from_env(
        {
            "REDIS_MODE": "Sentinel",
            "REDIS_SENTINELS": "s1:26380, s2 ,[::1]:26381",
            "REDIS_SENTINEL_MASTER": "votes-master",
            "REDIS_SENTINEL_USERNAME": "watcher",
            "REDIS_SENTINEL_PASSWORD": "pw",
        }
    )
    assert topology.mode == "sentinel"
    assert topology.sentinels == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (topology.sentinel_master, topology.sentinel_username) == ("votes-master", "watcher")
    assert topology.sentinel_password == "pw"


def test_the_sentinel_password_does_not_show_in_the_settings_repr() -> None:
    """Settings objects end up in tracebacks and debug output; passwords must not."""
    topology = RedisTopology(mode="sentinel", sentinel_master="m", sentinel_password="s3cr3t-pw")
    assert "s3cr3t-pw" not in repr(topology)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_MODE": "replicated"}, "REDIS_MODE"),
        ({"REDIS_MODE": "sentinel", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS"),
        ({"REDIS_MODE": "sentinel", "REDIS_SENTINELS": "s:1"}, "REDIS_SENTINEL_MASTER"),
        (
            {"REDIS_MODE": "sentinel", "REDIS_SENTINELS": "s:x", "REDIS_SENTINEL_MASTER": "m"},
            "REDIS_SENTINELS",
        ),
        ({"VOTE_SHARDS": "0"}, "VOTE_SHARDS"),
        ({"VOTE_SHARDS": "5000"}, "VOTE_SHARDS"),
        ({"REDIS_MODE": "cluster", "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_URL"),
        ({"REDIS_MODE": "cluster", "REDIS_URL": "redis://node:7000/3"}, "REDIS_URL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        redis_topology(env)


def test_vote_shard_must_be_below_the_shard_count() -> None:
    assert shard_index({}, 3) == 0
    assert shard_index({"VOTE_SHARD": "2"}, 3) == 2
    with pytest.raises(SettingsError, match="VOTE_SHARD"):
        shard_index({"VOTE_SHARD": "3"}, 3)


def test_a_cluster_stream_and_its_dead_letters_share_a_slot() -> None:
    (names,) = RedisTopology(mode="cluster").streams(BASE)
    assert names.stream == "{votes}"
    assert slot(names.stream) == slot(names.dead_letter) == slot("votes")
    tagged = StreamNames("app:{votes}", "g")
    assert RedisTopology(mode="cluster").streams(tagged) == (tagged,)


def test_shards_have_their_own_slots_and_dead_letters_beside_them() -> None:
    streams = RedisTopology(shards=3).streams(StreamNames("{votes}", "g"))
    assert [names.stream for names in streams] == ["{votes:0}", "{votes:1}", "{votes:2}"]
    assert len({slot(names.stream) for names in streams}) == 3
    for names in streams:
        assert has_hash_tag(names.stream)
        assert slot(names.dead_letter) == slot(names.stream)
        assert names.group == "g"
    assert layout_key(StreamNames("{votes}", "g")) == "votes:shards"


def test_voter_shard_is_stable_across_processes() -> None:
    """Python's hash() of a str changes with every process (PYTHONHASHSEED): never use it."""
    code = "from votecontract.topology import voter_shard; print(voter_shard('ann-42', 7))"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    }
    assert runs == {str(voter_shard("ann-42", 7))}
    assert voter_shard("anyone", 1) == 0
    spread = {voter_shard(f"voter-{i}", 4) for i in range(100)}
    assert spread == {0, 1, 2, 3}


def test_the_shard_of_an_entry_id_is_its_milliseconds_modulo_n() -> None:
    topology = RedisTopology(shards=3)
    assert [topology.shard_of_entry(ms) for ms in (1700000000000, 1700000000001)] == [2, 0]
    assert RedisTopology().shard_of_entry(1700000000001) == 0
