from __future__ import annotations

import random
from collections import Counter

import pytest

from loadtest.ledger import EntryId
from loadtest.vote_run import VoteRun, holds_for_votes, parse_weights, stepped_users

OPTIONS = ("cats", "dogs", "birds")


def test_default_weights_make_the_first_option_most_popular() -> None:
    assert parse_weights("", OPTIONS) == (3, 2, 1)
    assert parse_weights("1,1,5", OPTIONS) == (1, 1, 5)


@pytest.mark.parametrize("text", ["1,2", "1,x,2", "1,0,1", "1,2,3,4"])
def test_weights_must_match_the_options(text: str) -> None:
    with pytest.raises(ValueError, match="weights"):
        parse_weights(text, OPTIONS)


def test_options_are_picked_by_weight_and_a_change_picks_another() -> None:
    run = VoteRun(options=OPTIONS, weights=(8, 1, 1))
    rng = random.Random(7)
    picks = Counter(run.pick_option(rng) for _ in range(2000))
    assert picks["cats"] > picks["dogs"] + picks["birds"]
    assert all(run.pick_option(rng, instead_of="cats") != "cats" for _ in range(200))
    assert VoteRun(options=("only",), weights=(1,)).pick_option(rng, instead_of="only") == "only"


def test_voter_ids_are_unique_within_the_runs_prefix_and_valid_for_ingest() -> None:
    run = VoteRun(options=OPTIONS, weights=(1, 1, 1))
    ids = [run.new_voter_id() for _ in range(100)]
    assert len(set(ids)) == 100
    assert all(i.startswith(run.voter_prefix) and len(i) <= 64 for i in ids)
    assert VoteRun(options=OPTIONS, weights=(1, 1, 1)).voter_prefix != run.voter_prefix


def test_ledger_counts_requests_in_flight_as_unknown_outcomes() -> None:
    run = VoteRun(options=OPTIONS, weights=(1, 1, 1), uncertain=1, in_flight=2)
    run.record_accepted("12-3", "lt-a-1", "dogs")
    ledger = run.ledger()
    assert ledger.uncertain == 3
    assert [(v.entry_id, v.option) for v in ledger.votes] == [(EntryId(12, 3), "dogs")]


@pytest.mark.parametrize(
    ("elapsed", "users"), [(0, 50), (14.9, 50), (15, 100), (31, 150), (59.9, 200), (60, None)]
)
def test_users_climb_in_four_equal_steps_then_stop(elapsed: float, users: int | None) -> None:
    assert stepped_users(elapsed, 60, 200, 4) == users


def test_a_step_never_has_zero_users() -> None:
    assert stepped_users(0, 10, 1, 4) == 1


@pytest.mark.parametrize(
    ("accepted", "held_s", "holds"),
    [(0, 0.0, True), (199, 119.9, True), (200, 0.0, False), (0, 120.0, False)],
)
def test_the_top_step_is_held_until_enough_votes_within_the_bound(
    accepted: int, held_s: float, holds: bool
) -> None:
    assert holds_for_votes(accepted, 200, held_s, 120.0) is holds


def test_no_minimum_never_holds() -> None:
    assert holds_for_votes(0, 0, 0.0, 120.0) is False
