-- Each dead letter's fields exactly as Redis returned them: the flat list [name, value, ...],
-- any bytes, a repeated name kept as often as it came. `replay-dead-letters` re-validates
-- exactly this list; `fields` stays the readable form (undecodable bytes escaped, a repeated
-- name's last value only), which cannot tell what the entry was. NULL in rows written before
-- this column: such dead letters are never replayed.
ALTER TABLE dead_letters ADD COLUMN entry_fields bytea[];
