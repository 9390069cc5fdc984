--[[
  commit: apply a run of projected events of one entity to their topics, in order, atomically. Called
  through scripts.ts (bxCommit); a single commit is a run of one.

  The entries arrive complete: seq, epoch, ts and hash-chain link are computed by the committer
  (src/store/chain.ts; Lua has no SHA-256 and cjson does not write RFC 8785 JSON) from the heads it
  names. The script refuses unless each topic's head is still that one (seq, epoch and hash: a
  compare-and-set), then writes them as given.

  All keys are the commit's entity's (store `commitEntity`: an ISIN, an auction, a user; or the source
  stream of a commit without changes), under its hash tag, so on Redis Cluster they share one slot:
  KEYS[1]  <p>:{<entity>}:topics   hash   topic -> "<headSeq>|<epoch>|<updated_at>" (the entity's registry, for listing)
  KEYS[2]  <p>:{<entity>}:offsets  hash   source stream -> last offset applied to the entity (decimal string)
  KEYS[3]  <p>:{<entity>}:dedup    zset   event_id -> arrival order (1, 2, 3, …); the entity's newest `dedupWindow` ids
  then, for every change of every event, in order:
  KEYS[..]  <p>:{<entity>}:<topic>:meta  hash    epoch, seq (head), updated_at, hash (chain head), state (snapshot JSON)
  KEYS[..]  <p>:{<entity>}:<topic>:h     stream  id <seq>-0, fields: type ts event_ts event_id payload epoch hash

  ARGV[1] history max length (XADD MAXLEN ~)   ARGV[2] dedup window (number of event ids)
  ARGV[3] m (number of events); then per event, 6 fields:
      event_id, event_ts, the offset the committer expects stored for the source and entity ('' = no
      expectation, '-' = none stored), source stream ('' = none), source offset (decimal string),
      n (number of changes);
  then 12 per change: topic, live channel, type, payload JSON, state JSON, epoch, seq, ts, hash, and the
      head it follows: seq (0 = no topic yet; -1 = not checked: a topic an earlier change of this run
      wrote, whose head is that change's entry), epoch, hash

  Returns {'ok'} when every event applied, else the first event that did not, with its 1-based index:
  {'offset_mismatch', i, stored|''} | {'head_mismatch', i, topic, stored_seq} | {'already_applied_offset', i}
  | {'duplicate_event', i}. The events before it are committed; it and those after it are not (their
  expectations were built on it): each event is checked against what the ones before it wrote, exactly
  as if it were committed alone right after them.

  The two mismatches guard history against a store that came back older than its writer believes
  (restored RDB snapshot, AOF everysec after a crash, async replica promoted): without them the writer
  would hand seqs the store already lost to other content under the same epoch. Nothing is written
  then; the writer re-reads and re-seeks.

  Everything that can fail is checked before an event's first write: Redis does not roll a script back. (XADD
  could still fail if a topic's meta vanished while its stream stayed, which only eviction can cause:
  Redis must run with maxmemory-policy noeviction.)

  Idempotency and the offset check are per entity: a record redelivered after a re-seek is refused by
  its own entity's offset, whatever other entities of the stream hold.
]]

local max_len, dedup_window, m = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local PER_EVENT, PER_CHANGE = 6, 12

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

-- Applies one event whose arguments start after ARGV[a] and change keys after KEYS[k]; nil when it
-- applied, else its refusal (nothing of it written).
local function apply(a, k)
  local event_id, event_ts = ARGV[a + 1], ARGV[a + 2]
  local src_after, src_stream, src_offset = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local n = tonumber(ARGV[a + 6])
  local function arg(i, j) return ARGV[a + PER_EVENT + PER_CHANGE * (i - 1) + j] end
  local function meta_key(i) return KEYS[k + 2 * i - 1] end
  local function hist_key(i) return KEYS[k + 2 * i] end

  -- 1. The store must be where the committer believes it is: same source offset for the entity, same topic heads.
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
    local expected = tonumber(arg(i, 10))
    if expected >= 0 then
      local head = redis.call('HMGET', meta_key(i), 'epoch', 'seq', 'hash')
      local seq = tonumber(head[2] or '0')
      local same
      if expected == 0 then same = head[1] == false else same = seq == expected and head[1] == arg(i, 11) and head[3] == arg(i, 12) end
      if not same then
        return { 'head_mismatch', arg(i, 1), seq }
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

  -- 4. Append one history entry per change, update the snapshot and chain head, publish the entry.
  for i = 1, n do
    local meta, hist = meta_key(i), hist_key(i)
    local topic, channel, entry_type, payload, state = arg(i, 1), arg(i, 2), arg(i, 3), arg(i, 4), arg(i, 5)
    local epoch, seq, entry_ts, hash = arg(i, 6), arg(i, 7), arg(i, 8), arg(i, 9)

    redis.call('HSET', meta, 'epoch', epoch, 'seq', seq, 'updated_at', entry_ts, 'hash', hash, 'state', state)
    redis.call('XADD', hist, 'MAXLEN', '~', max_len, seq .. '-0',
      'type', entry_type, 'ts', entry_ts, 'event_ts', event_ts, 'event_id', event_id, 'payload', payload,
      'epoch', epoch, 'hash', hash)
    redis.call('HSET', KEYS[1], topic, seq .. '|' .. epoch .. '|' .. entry_ts)

    -- The full entry, so live consumers need no read; `payload` is already JSON and is spliced in as is.
    -- A shard channel in the topic's slot: on a cluster only that shard carries it (PUBLISH goes to every node).
    redis.call('SPUBLISH', channel, '{"topic":' .. cjson.encode(topic) .. ',"epoch":' .. cjson.encode(epoch) ..
      ',"seq":' .. seq .. ',"type":' .. cjson.encode(entry_type) .. ',"ts":' .. cjson.encode(entry_ts) ..
      ',"event_ts":' .. cjson.encode(event_ts) .. ',"event_id":' .. cjson.encode(event_id) ..
      ',"payload":' .. payload .. ',"hash":' .. cjson.encode(hash) .. '}')
  end
  return nil
end

-- The argument and key layout is checked in full before the first event is applied.
local a, k, keys_needed = 3, 3, 3
for _ = 1, m do
  local n = tonumber(ARGV[a + 6])
  if n == nil then return redis.error_reply('ERR bxCommit: malformed event arguments') end
  a, keys_needed = a + PER_EVENT + PER_CHANGE * n, keys_needed + 2 * n
end
if #KEYS ~= keys_needed or #ARGV ~= a then
  return redis.error_reply('ERR bxCommit: expected ' .. keys_needed .. ' keys and ' .. a .. ' args')
end

a, k = 3, 3
for e = 1, m do
  local refusal = apply(a, k)
  if refusal then
    if refusal.err then return refusal end
    table.insert(refusal, 2, e)
    return refusal
  end
  local n = tonumber(ARGV[a + 6])
  a, k = a + PER_EVENT + PER_CHANGE * n, k + 2 * n
end
return { 'ok' }
