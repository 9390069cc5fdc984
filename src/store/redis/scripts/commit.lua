--[[
  commit: apply one projected event to its topics, atomically. Called through scripts.ts (bxCommit).

  KEYS[1]  <p>:topics    hash   topic -> "<headSeq>|<epoch>|<updated_at>" (registry for listing)
  KEYS[2]  <p>:offsets   hash   source stream -> last applied offset (decimal string)
  KEYS[3]  <p>:dedup     zset   event_id -> arrival order (1, 2, 3, …); the newest `dedupWindow` ids are kept
  then, for change i = 1..n:
  KEYS[2+2i]  <p>:{<topic>}:meta  hash    epoch, seq (head), updated_at, state (snapshot JSON)
  KEYS[3+2i]  <p>:{<topic>}:h     stream  id <seq>-0, fields: type ts event_ts event_id payload

  ARGV[1] event_id      ARGV[2] event_ts       ARGV[3] ts (commit time, canonical ISO-8601: raised per
                                                       topic to its previous entry's ts when earlier)
  ARGV[4] offset the committer expects stored for the source ('' = no expectation, '-' = none stored)
  ARGV[5] candidate epoch for topics created now
  ARGV[6] source stream ('' = none)            ARGV[7] source offset (decimal string)
  ARGV[8] history max length (XADD MAXLEN ~)   ARGV[9] dedup window (number of event ids)
  ARGV[10] n (number of changes)
  then, for change i (a = 5+6i): ARGV[a] topic, ARGV[a+1] live channel, ARGV[a+2] type,
                                 ARGV[a+3] payload JSON, ARGV[a+4] state JSON,
                                 ARGV[a+5] expected head seq (-1 = no expectation)

  Returns {'offset_mismatch', stored|''} | {'head_mismatch', topic, stored_seq} | {'already_applied_offset'}
        | {'duplicate_event'} | {'ok', epoch1, seq1, ts1, epoch2, seq2, ts2, ...}.

  The two mismatches guard history against a store that came back older than its writer believes
  (restored RDB snapshot, AOF everysec after a crash, async replica promoted): without them the writer
  would hand seqs the store already lost to other content under the same epoch. Nothing is written
  then; the writer re-reads and re-seeks.

  Everything that can fail is checked before the first write: Redis does not roll a script back. (XADD
  could still fail if a topic's meta vanished while its stream stayed, which only eviction can cause:
  Redis must run with maxmemory-policy noeviction.)

  Redis Cluster: this script touches the registry, offsets and dedup keys plus two keys per topic, i.e.
  several hash slots, so it only runs on a single Redis node (what we deploy). In cluster mode each call
  would have to stay within one slot: one commit per topic slot, with per-slot registry/offset/dedup keys
  (e.g. <p>:{<topic>}:...), which gives up cross-topic atomicity of a multi-topic event. The {<topic>}
  hash tag already keeps a topic's meta and history in one slot.
]]

local event_id, event_ts, ts = ARGV[1], ARGV[2], ARGV[3]
local src_after, candidate_epoch = ARGV[4], ARGV[5]
local src_stream, src_offset = ARGV[6], ARGV[7]
local max_len, dedup_window, n = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])

if #KEYS ~= 3 + 2 * n or #ARGV ~= 10 + 6 * n then
  return redis.error_reply('ERR bxCommit: expected ' .. (3 + 2 * n) .. ' keys and ' .. (10 + 6 * n) .. ' args')
end

-- Offsets are compared as unsigned decimal strings: Lua numbers are doubles and Kafka offsets are int64.
local function strip_zeros(s)
  local stripped = string.gsub(s, '^0+', '')
  if stripped == '' then return '0' end
  return stripped
end
local function offset_le(a, b)
  a, b = strip_zeros(a), strip_zeros(b)
  if #a ~= #b then return #a < #b end
  return a <= b
end

-- 1. The store must be where the committer believes it is: same source offset, same topic heads.
local applied = false
if src_stream ~= '' then
  if not string.match(src_offset, '^%d+$') then
    return redis.error_reply('ERR bxCommit: source offset must be a decimal string')
  end
  applied = redis.call('HGET', KEYS[2], src_stream)
  if src_after ~= '' then
    local expected_none = src_after == '-'
    if (applied == false) ~= expected_none or (applied and strip_zeros(applied) ~= strip_zeros(src_after)) then
      return { 'offset_mismatch', applied or '' }
    end
  end
end
for i = 1, n do
  local expected = tonumber(ARGV[10 + 6 * i])
  if expected >= 0 then
    local head = tonumber(redis.call('HGET', KEYS[2 + 2 * i], 'seq') or '0')
    if head ~= expected then
      return { 'head_mismatch', ARGV[5 + 6 * i], head }
    end
  end
end

-- 2. Idempotency by source position. The offset is stored even when the event id turns out to be a
--    duplicate, so consumption resumes after it.
if src_stream ~= '' then
  if applied and offset_le(src_offset, applied) then
    return { 'already_applied_offset' }
  end
  redis.call('HSET', KEYS[2], src_stream, src_offset)
end

-- 3. Idempotency by event id, over a bounded window of the most recent ids. Scores are arrival order
--    (a counter, not a clock: ids committed within one millisecond would tie and be evicted by name).
if redis.call('ZSCORE', KEYS[3], event_id) then
  return { 'duplicate_event' }
end
local newest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[3], (tonumber(newest[2]) or 0) + 1, event_id)
local remembered = redis.call('ZCARD', KEYS[3])
if remembered > dedup_window then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, remembered - dedup_window - 1)
end

-- 4. Append one history entry per change, update the snapshot, publish the entry.
local result = { 'ok' }
for i = 1, n do
  local meta, hist = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local a = 5 + 6 * i
  local topic, channel, entry_type, payload, state = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]

  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = candidate_epoch
    redis.call('HSET', meta, 'epoch', epoch)
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  -- A topic's history is ordered by ts too: updated_at is its previous entry's ts (only commits set it).
  local entry_ts = ts
  local previous = redis.call('HGET', meta, 'updated_at')
  if previous and previous > ts then entry_ts = previous end
  redis.call('HSET', meta, 'updated_at', entry_ts, 'state', state)
  redis.call('XADD', hist, 'MAXLEN', '~', max_len, seq .. '-0',
    'type', entry_type, 'ts', entry_ts, 'event_ts', event_ts, 'event_id', event_id, 'payload', payload)
  redis.call('HSET', KEYS[1], topic, seq .. '|' .. epoch .. '|' .. entry_ts)

  -- The full entry, so live consumers need no read. `payload` is already JSON and is spliced in as is.
  redis.call('PUBLISH', channel, '{"topic":' .. cjson.encode(topic) .. ',"epoch":' .. cjson.encode(epoch) ..
    ',"seq":' .. seq .. ',"type":' .. cjson.encode(entry_type) .. ',"ts":' .. cjson.encode(entry_ts) ..
    ',"event_ts":' .. cjson.encode(event_ts) .. ',"event_id":' .. cjson.encode(event_id) ..
    ',"payload":' .. payload .. '}')

  result[#result + 1] = epoch
  result[#result + 1] = seq
  result[#result + 1] = entry_ts
end
return result
