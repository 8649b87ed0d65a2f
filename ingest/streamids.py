"""A vote whose stream ID the processor cannot record is refused with 503, never answered 202.

Anyone allowed to XADD can push the stream's IDs past PostgreSQL's bigint, and Redis then
generates IDs above it for every later vote. Such a vote is in the stream but can only ever be
dead-lettered, so ingest answers 503 `stream_id_out_of_range` (counted in
`votes_rejected_total`): the client retries, and once an operator has reset the stream's IDs
(docs: operations) the retry is accepted. The condition is logged at most once per
`LOG_INTERVAL_S`, with the number of votes refused since the last line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.errors import unavailable
from votecontract.entry import BIGINT_MAX, fits_bigint

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0
OUT_OF_RANGE = "stream_id_out_of_range"


@dataclass
class RecordableIds:
    """Checks each accepted entry ID; raises the 503 VoteError for one beyond bigint."""

    clock: Callable[[], float] = time.monotonic
    _refused: int = 0
    _logged_at: float | None = field(default=None, repr=False)

    def check(self, entry_id: str, retry_after_s: int) -> None:
        if fits_bigint(entry_id):
            return
        self._refused += 1
        now = self.clock()
        if self._logged_at is None or now - self._logged_at >= LOG_INTERVAL_S:
            logger.error(
                "the vote stream's IDs are beyond PostgreSQL's bigint: votes are refused (503)"
                " until an operator resets the stream's IDs",
                extra={"id": entry_id, "refused": self._refused, "bigint_max": BIGINT_MAX},
            )
            self._logged_at, self._refused = now, 0
        raise unavailable(OUT_OF_RANGE, "the vote could not be stored, retry later", retry_after_s)
