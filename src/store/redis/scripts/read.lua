--[[
  read: a topic's head and the history entries after a seq, as one consistent cut. Read-only.
  Called through scripts.ts (bxRead) by RedisTopicStore.readAfter.

  KEYS[1] <p>:{<topic>}:meta   KEYS[2] <p>:{<topic>}:h
  ARGV[1] topic   ARGV[2] first seq wanted (afterSeq + 1)   ARGV[3] max entries (0 = none)

  Returns {} for an unknown topic, else {epoch, headSeq, firstSeq, entriesJson} where entriesJson is a
  JSON array of complete HistoryEntry objects (same shape commit.lua publishes). Building the JSON here
  makes the reply one bulk string: decoding ~13 RESP values per entry in the client costs far more
  than one JSON.parse.
]]

local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local epoch, head = meta[1], meta[2]
if not epoch then return {} end
head = head or '0'

local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first_seq
if first[1] then
  first_seq = string.match(first[1][1], '^(%d+)-')
else
  first_seq = tostring(tonumber(head) + 1)
end

local parts = {}
local count = tonumber(ARGV[3])
if count > 0 then
  local prefix = '{"topic":' .. cjson.encode(ARGV[1]) .. ',"epoch":' .. cjson.encode(epoch) .. ',"seq":'
  local entries = redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', '+', 'COUNT', count)
  for i, entry in ipairs(entries) do
    local f, fields = {}, entry[2]
    for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
    parts[i] = prefix .. string.match(entry[1], '^(%d+)-') .. ',"type":' .. cjson.encode(f['type']) ..
      ',"ts":' .. cjson.encode(f['ts']) .. ',"event_ts":' .. cjson.encode(f['event_ts']) ..
      ',"event_id":' .. cjson.encode(f['event_id']) .. ',"payload":' .. f['payload'] .. '}'
  end
end
return { epoch, head, first_seq, '[' .. table.concat(parts, ',') .. ']' }
