"""The two Lua scripts that make limits exact: `CHECK` before the upstream call, `SETTLE` after.

Each runs atomically in Redis, so concurrent requests on any number of gateway instances see one
order of events; every key a call passes shares the account's hash tag, so each call runs on one
Redis Cluster node. Time comes from Redis (`TIME`), never from a gateway's clock, so instances
with skewed clocks still agree on the window.

CHECK  KEYS: the checks' keys in order (`t` has two: members, amounts).
       ARGV: member, estimate, window_ms, lease_ms, n, then n times (kind, limit, ttl_seconds).
       Returns {admitted, failed_index, remaining_1, reset_ms_1, ...}. All or nothing: a refused
       request updates no counter, and arguments that are not whole numbers in range (the
       estimate at most 10^12, every limit at most 2^53) are an error before any write.
SETTLE KEYS: the keys of the `t`, `c`, `d`, `m` checks.
       ARGV: member, estimate, actual, window_ms, n, then n times (kind, ttl_seconds).
"""

from __future__ import annotations

CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, est = ARGV[1], tonumber(ARGV[2])
local window, lease, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function whole(x, most) return x and x >= 0 and x <= most and x == math.floor(x) end
if not (whole(est, 1e12) and whole(n, 1000)) then
  return redis.error_reply('ERR gateway limits: estimate or check count out of range')
end
for i = 1, n do
  if not whole(tonumber(ARGV[5 + (i - 1) * 3 + 2]), 2 ^ 53) then
    return redis.error_reply('ERR gateway limits: limit ' .. i .. ' out of range')
  end
end
local out = {1, 0}
local first = {}
local k = 1
local function oldest_reset(key)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then return tonumber(oldest[2]) + window - now end
  return window
end
for i = 1, n do
  local base = 5 + (i - 1) * 3
  local kind, limit, ttl = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local key = KEYS[k]
  first[i] = k
  local used, cost, reset, ok = 0, 1, 0, true
  if kind == 'r' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    used = redis.call('ZCARD', key)
    reset = oldest_reset(key)
    ok = used + 1 <= limit
    k = k + 1
  elseif kind == 't' then
    local amounts = KEYS[k + 1]
    local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now - window)
    if #expired > 0 then
      local gone = 0
      for _, m in ipairs(expired) do
        gone = gone + tonumber(redis.call('HGET', amounts, m) or '0')
        redis.call('HDEL', amounts, m)
      end
      redis.call('HINCRBY', amounts, '_sum', -gone)
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    end
    used = tonumber(redis.call('HGET', amounts, '_sum') or '0')
    cost = est
    reset = oldest_reset(key)
    ok = used + est <= limit
    k = k + 2
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    used = redis.call('ZCARD', key)
    ok = used + 1 <= limit
    k = k + 1
  else
    used = tonumber(redis.call('GET', key) or '0')
    cost = est
    reset = ttl * 1000
    ok = used < limit
    k = k + 1
  end
  if not ok and out[1] == 1 then
    out[1] = 0
    out[2] = i
  end
  local remaining = limit - used
  if out[1] == 1 then remaining = remaining - cost end
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = reset
end
if out[1] == 0 then return out end
for i = 1, n do
  local base = 5 + (i - 1) * 3
  local kind, ttl = ARGV[base + 1], tonumber(ARGV[base + 3])
  local key = KEYS[first[i]]
  if kind == 'r' then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
  elseif kind == 't' then
    local amounts = KEYS[first[i] + 1]
    redis.call('ZADD', key, now, member)
    redis.call('HSET', amounts, member, est)
    redis.call('HINCRBY', amounts, '_sum', est)
    redis.call('PEXPIRE', key, window)
    redis.call('PEXPIRE', amounts, window)
  elseif kind == 'c' then
    redis.call('ZADD', key, now + lease, member)
    redis.call('PEXPIRE', key, lease)
  else
    redis.call('INCRBY', key, est)
    redis.call('EXPIRE', key, ttl + 3600)
  end
end
return out
"""

SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, est, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local window, n = tonumber(ARGV[4]), tonumber(ARGV[5])
local k = 1
for i = 1, n do
  local kind, ttl = ARGV[5 + (i - 1) * 2 + 1], tonumber(ARGV[5 + (i - 1) * 2 + 2])
  local key = KEYS[k]
  if kind == 't' then
    local amounts = KEYS[k + 1]
    local old = redis.call('HGET', amounts, member)
    if old then
      redis.call('HSET', amounts, member, actual)
      redis.call('HINCRBY', amounts, '_sum', actual - tonumber(old))
    elseif actual > 0 then
      redis.call('ZADD', key, now, member)
      redis.call('HSET', amounts, member, actual)
      redis.call('HINCRBY', amounts, '_sum', actual)
    end
    redis.call('PEXPIRE', key, window)
    redis.call('PEXPIRE', amounts, window)
    k = k + 2
  elseif kind == 'c' then
    redis.call('ZREM', key, member)
    k = k + 1
  else
    redis.call('INCRBY', key, actual - est)
    redis.call('EXPIRE', key, ttl + 3600)
    k = k + 1
  end
end
return 1
"""
