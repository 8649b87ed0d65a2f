"""The cookies the ingest service sets and reads (a browser-facing detail: no other process
sees them)."""

from __future__ import annotations

from votecontract.names import FIELD_VOTER_ID

# The voter's generated identity, for clients that send no `voter_id`.
VOTER_COOKIE = FIELD_VOTER_ID
# The voter's latest vote ID: set by the voting page's script and by the 303 that answers a
# plain HTML form POST /vote; read by GET / to show that vote's state.
COOKIE_LAST_VOTE = "last_vote"
# Both last a year.
COOKIE_MAX_AGE_S = 365 * 24 * 3600
