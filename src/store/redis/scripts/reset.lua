--[[
  reset: drop a topic's snapshot and history and unregister it. Its next commit creates the topic
  afresh: new epoch (the caller's candidate), seq restarting at 1. Called through scripts.ts (bxReset).

  KEYS[1] <p>:topics   KEYS[2] <p>:{<entity>}:meta   KEYS[3] <p>:{<entity>}:h
  ARGV[1] topic
  Returns 1 when the topic existed, else 0.
  (Redis Cluster: KEYS[1] lives in another slot than the topic's keys; see commit.lua.)
]]

local existed = redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
if existed > 0 then return 1 end
return 0
