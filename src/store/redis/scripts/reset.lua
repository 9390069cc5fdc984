--[[
  reset: drop a topic's snapshot and history and unregister it. Its next commit creates the topic
  afresh: new epoch (the caller's candidate), seq restarting at 1. Called through scripts.ts (bxReset).

  KEYS[1] <p>:{<entity>}:topics (the entity's registry)   KEYS[2] <p>:{<entity>}:<topic>:meta   KEYS[3] <p>:{<entity>}:<topic>:h
  ARGV[1] topic
  Returns 1 when the topic existed, else 0.
]]

local existed = redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
if existed > 0 then return 1 end
return 0
