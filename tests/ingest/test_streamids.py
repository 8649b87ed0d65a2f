"""RecordableIds: an entry ID beyond bigint is a 503, logged once per interval with a count."""

from __future__ import annotations

import logging

import pytest

from ingest.streamids import LOG_INTERVAL_S, OUT_OF_RANGE, RecordableIds
from ingest.votes import VoteError


def test_an_id_beyond_bigint_is_refused_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    now = [0.0]
    ids = RecordableIds(clock=lambda: now[0])
    ids.check(f"{2**63 - 1}-{2**63 - 1}", 1)  # fits: nothing happens
    for moment in (0.0, 1.0, 2.0, LOG_INTERVAL_S + 0.5):
        now[0] = moment
        with pytest.raises(VoteError) as refused:
            ids.check(f"{2**63}-0", 3)
        assert (refused.value.status, refused.value.reason) == (503, OUT_OF_RANGE)
        assert refused.value.headers == {"Retry-After": "3"}
    counts = [getattr(record, "refused", None) for record in caplog.records]
    assert counts == [1, 3]
