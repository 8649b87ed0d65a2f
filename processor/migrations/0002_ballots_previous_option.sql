-- The option a ballot replaced (NULL for a voter's first ballot). PostgreSQL 15's
-- INSERT ... ON CONFLICT DO UPDATE ... RETURNING shows only the new row; writing the old option
-- into this column lets the same statement, under its row lock, return the exact tally delta
-- even when another Job changed the ballot concurrently.
ALTER TABLE ballots ADD COLUMN previous_option text;

-- voter_id is ASCII ([A-Za-z0-9_-]), so byte order is the only order it needs; "C" makes each
-- index probe and sort of the per-batch upsert several times cheaper than a locale collation.
ALTER TABLE ballots ALTER COLUMN voter_id TYPE text COLLATE "C";
