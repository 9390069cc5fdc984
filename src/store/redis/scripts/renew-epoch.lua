--[[
  renew-epoch: give a topic a new epoch if it still has the one the caller saw (compare-and-set, so
  several gateways noticing the same rewritten history renew it once). Seq, state and history stay:
  only clients holding the old epoch are told to re-sync. Called through scripts.ts (bxRenewEpoch).

  KEYS[1] <p>:{<entity>}:topics (the entity's registry)   KEYS[2] <p>:{<entity>}:<topic>:meta
  ARGV[1] topic   ARGV[2] epoch the caller saw   ARGV[3] candidate new epoch   ARGV[4] live channel
  ARGV[5] hash(0) of the candidate epoch: the chain head from now on (the new epoch's chain starts
          at the head's seq; the kept entries stay in their own epoch's chain)
  Returns the topic's epoch afterwards ('' when the topic does not exist).
  A renewal publishes {"topic":…,"stale":true} on the live channel: no entry carries the new epoch
  until the next commit, and a quiet topic's gateways must not keep serving the old one meanwhile.
]]

local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return '' end
if epoch ~= ARGV[2] then return epoch end
redis.call('HSET', KEYS[2], 'epoch', ARGV[3], 'hash', ARGV[5])
local seq = redis.call('HGET', KEYS[2], 'seq') or '0'
local updated = redis.call('HGET', KEYS[2], 'updated_at') or ''
redis.call('HSET', KEYS[1], ARGV[1], seq .. '|' .. ARGV[3] .. '|' .. updated)
redis.call('SPUBLISH', ARGV[4], '{"topic":' .. cjson.encode(ARGV[1]) .. ',"stale":true}')
return ARGV[3]
