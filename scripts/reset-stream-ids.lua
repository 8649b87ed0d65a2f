-- Moves a vote stream whose IDs went beyond PostgreSQL's bigint aside and starts a fresh one
-- (docs: operations, "Stream IDs beyond bigint"). Atomic: nothing is written in between.
--   redis-cli --eval scripts/reset-stream-ids.lua <stream> <new name of the old stream> , <group>...
-- KEYS[1] the vote stream, KEYS[2] the name the old stream gets; ARGV the consumer groups to
-- create at 0 on the fresh stream (the vote group, and any other group the old one had).
-- Refused while an entry at or below 9223372036854775807-9223372036854775807 is left: such an
-- entry may be a vote answered 202 that is not recorded yet; the processor Jobs drain and trim
-- them (and dead-letter the entries beyond bigint) first.
local BIGINT_MAX_ID = '9223372036854775807-9223372036854775807'
if #redis.call('XRANGE', KEYS[1], '-', BIGINT_MAX_ID, 'COUNT', 1) > 0 then
    return redis.error_reply('entries up to ' .. BIGINT_MAX_ID .. ' are left in ' .. KEYS[1]
        .. ': let the processor drain them, then run this again')
end
if redis.call('EXISTS', KEYS[2]) == 1 then
    return redis.error_reply(KEYS[2] .. ' exists already: choose another name')
end
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('RENAME', KEYS[1], KEYS[2])
end
for _, group in ipairs(ARGV) do
    redis.call('XGROUP', 'CREATE', KEYS[1], group, '0', 'MKSTREAM')
end
return 'OK'
