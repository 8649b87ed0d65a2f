-- The schema contract shared with the results endpoints (see the team brief).
CREATE TABLE vote_events (          -- append-only, one row per stream entry ever recorded
    entry_ms    bigint NOT NULL,    -- stream ID "<entry_ms>-<entry_seq>"
    entry_seq   bigint NOT NULL,
    option      text   NOT NULL,
    voter_id    text   NOT NULL,
    accepted_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entry_ms, entry_seq));

CREATE TABLE ballots (              -- one row per voter: latest vote by stream ID
    voter_id   text PRIMARY KEY,
    option     text   NOT NULL,
    entry_ms   bigint NOT NULL,
    entry_seq  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());

CREATE TABLE tally (                -- always equals ballots counted per option
    option text PRIMARY KEY,
    votes  bigint NOT NULL DEFAULT 0 CHECK (votes >= 0));

CREATE TABLE dead_letters (         -- every dead-lettered entry, for GET /votes/{id}
    entry_ms  bigint NOT NULL,
    entry_seq bigint NOT NULL,
    reason    text  NOT NULL,
    fields    jsonb NOT NULL,       -- original fields (non-UTF-8 bytes escaped)
    dead_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entry_ms, entry_seq));
