-- A stream ID's two parts are unsigned 64-bit. Whoever may XADD can write an ID beyond bigint,
-- and Redis hands out IDs above it from then on; such an entry is never recordable, so it is
-- dead-lettered, and dead_letters must hold its ID: numeric(20,0) holds every u64 exactly.
-- vote_events and ballots keep bigint: the processor records no entry beyond it.
ALTER TABLE dead_letters
    ALTER COLUMN entry_ms TYPE numeric(20, 0),
    ALTER COLUMN entry_seq TYPE numeric(20, 0),
    ADD CONSTRAINT dead_letters_stream_id CHECK (
        entry_ms BETWEEN 0 AND 18446744073709551615
        AND entry_seq BETWEEN 0 AND 18446744073709551615);
