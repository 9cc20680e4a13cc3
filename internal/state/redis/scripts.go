package redis

import goredis "github.com/redis/go-redis/v9"

// The server-side scripts. Every key a script touches is passed in KEYS
// (the meta hash, the key index, the expiry index, then the entries), so
// that they run on Redis Cluster too, where all of a store's keys share
// one hash slot through the prefix's hash tag.
//
// An entry is stored as the 8-byte expiry header of state.AppendEntry
// followed by the value, so it is never shorter than 8 bytes: STRLEN 0
// means the entry does not exist.

// applyScript applies the writes of one transaction. ARGV[1] is the length
// of the entries' Redis key prefix (what precedes the store key); then, for
// the j-th entry key (KEYS[3+j]), ARGV[2j] is its kind — "d" for a
// deletion, "p" for a put without expiry, otherwise the expiry-index score
// of a put — and ARGV[2j+1] the stored entry (empty for a deletion). It
// keeps both indexes and the counters in step with the entries, and
// returns the change in the number of entries.
var applyScript = goredis.NewScript(`
local plen = tonumber(ARGV[1])
local dn, db = 0, 0
for i = 4, #KEYS do
  local k = KEYS[i]
  local raw = string.sub(k, plen + 1)
  local j = i - 3
  local kind, val = ARGV[2*j], ARGV[2*j+1]
  local old = redis.call('STRLEN', k)
  if old > 0 then
    dn = dn - 1
    db = db - (#raw + old - 8)
  end
  if kind == 'd' then
    if old > 0 then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[2], raw)
      redis.call('ZREM', KEYS[3], raw)
    end
  else
    redis.call('SET', k, val)
    if old == 0 then
      redis.call('ZADD', KEYS[2], 0, raw)
    end
    if kind == 'p' then
      if old > 0 then
        redis.call('ZREM', KEYS[3], raw)
      end
    else
      redis.call('ZADD', KEYS[3], kind, raw)
    end
    dn = dn + 1
    db = db + #raw + #val - 8
  end
end
if dn ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'entries', dn)
end
if db ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'bytes', db)
end
return dn
`)

// sweepScript removes the entries among KEYS[4..] that are expired at a
// time now, judged exactly on each entry's header: ARGV[1] is the length
// of the entries' Redis key prefix, ARGV[2] and ARGV[3] the high and low 32
// bits of now as state.AppendExpiryIndexKey orders times (the sign bit
// flipped). An entry gone or without expiry only loses its stale member of
// the expiry index. It returns {removed, still live}.
var sweepScript = goredis.NewScript(`
local plen = tonumber(ARGV[1])
local nhi, nlo = tonumber(ARGV[2]), tonumber(ARGV[3])
local removed, live, db = 0, 0, 0
for i = 4, #KEYS do
  local k = KEYS[i]
  local raw = string.sub(k, plen + 1)
  local v = redis.call('GET', k)
  if not v or #v < 8 or string.sub(v, 1, 8) == '\0\0\0\0\0\0\0\0' then
    redis.call('ZREM', KEYS[3], raw)
  else
    local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(v, 1, 8)
    if b1 >= 128 then b1 = b1 - 128 else b1 = b1 + 128 end
    local hi = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    local lo = ((b5 * 256 + b6) * 256 + b7) * 256 + b8
    if hi < nhi or (hi == nhi and lo <= nlo) then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[2], raw)
      redis.call('ZREM', KEYS[3], raw)
      removed = removed + 1
      db = db + #raw + #v - 8
    else
      live = live + 1
    end
  end
end
if removed > 0 then
  redis.call('HINCRBY', KEYS[1], 'entries', -removed)
  redis.call('HINCRBY', KEYS[1], 'bytes', -db)
end
return {removed, live}
`)

// scripts are loaded when a store opens, and again when the server says it
// lost them (NOSCRIPT: a restart or SCRIPT FLUSH).
var scripts = []*goredis.Script{applyScript, sweepScript}
