package redis

import goredis "github.com/redis/go-redis/v9"

// luaInt is exact int64 arithmetic for Redis's Lua, whose numbers are
// doubles (exact only up to 2^53, while cells reach ~1.9e18). A number is a
// pair {hi, lo} worth hi×1e9 + lo with 0 <= lo < 1e9; both halves stay far
// below 2^53, so sums and comparisons are exact. Other scripts of this
// package (store/redis/sync.go) may prepend it too.
//
//	int(s)         parses a decimal string ("-12", "1900000000000000001")
//	int_add(a, b)  a + b
//	int_le(a, b)   a <= b
//	int_str(a)     the decimal string of a
//	int_weighted(a, ppm)  floor(a × ppm / 1e6) for 0 <= ppm <= 1e6, 0 when a <= 0
//	                      (the integer store.Weighted computes)
const luaInt = `
local INT_B = 1000000000

local function int(s)
  if type(s) ~= 'string' or not string.find(s, '^%-?%d+$') then
    error('floodgate: not an integer: ' .. tostring(s))
  end
  local neg = string.sub(s, 1, 1) == '-'
  if neg then s = string.sub(s, 2) end
  local n = string.len(s)
  local hi, lo = 0, tonumber(s)
  if n > 9 then
    hi = tonumber(string.sub(s, 1, n - 9))
    lo = tonumber(string.sub(s, n - 8))
  end
  if neg then
    if lo > 0 then return {-hi - 1, INT_B - lo} end
    return {-hi, 0}
  end
  return {hi, lo}
end

local function int_add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= INT_B then return {hi + 1, lo - INT_B} end
  return {hi, lo}
end

local function int_le(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] <= b[2])
end

-- pad9 renders 0 <= x < 1e9 as exactly nine digits.
local function pad9(x)
  local s = tostring(x)
  return string.rep('0', 9 - string.len(s)) .. s
end

local function int_str(a)
  local hi, lo, sign = a[1], a[2], ''
  if hi < 0 then
    sign = '-'
    if lo > 0 then hi, lo = -hi - 1, INT_B - lo else hi = -hi end
  end
  if hi == 0 then return sign .. tostring(lo) end
  return sign .. tostring(hi) .. pad9(lo)
end

local function int_weighted(a, ppm)
  if a[1] < 0 or (a[1] == 0 and a[2] == 0) then return {0, 0} end
  -- a = x2×1e12 + x1×1e6 + x0, with x1, x0 < 1e6 and x2 < 1e7.
  local hb = a[1] % 1000
  local x2 = (a[1] - hb) / 1000
  local x0 = a[2] % 1000000
  local x1 = hb * 1000 + (a[2] - x0) / 1000000
  -- a×ppm/1e6 = x2×ppm×1e6 + x1×ppm + x0×ppm/1e6; every product < 1e13.
  local p0 = x0 * ppm
  local r0 = x1 * ppm + (p0 - p0 % 1000000) / 1000000
  local carry = r0 % 1000000
  local r1 = x2 * ppm + (r0 - carry) / 1000000
  r0 = carry
  -- result = r1×1e6 + r0 = hi×1e9 + lo
  local m = r1 % 1000
  return {(r1 - m) / 1000, m * 1000000 + r0}
end
`

// luaBatch is the body of batchScript: one decision, every op kind, all or
// nothing. It evaluates every op first, reading state only, and writes
// (SET ... PX, XADD, PEXPIRE) only when every op fits and the batch is not a
// peek. It never uses the server's clock for decisions: the batch's instant
// arrives in ARGV. Numbers go to redis.call as strings made by tostring
// (exact below 1e14): some Redis versions print number arguments in
// exponent form ("1e+08"), which commands reject (redis/redis#13115).
//
// KEYS[1..n] are the ops' keys, in op order; prior cells follow them.
//
// ARGV[1] "1" for a peek; ARGV[2] "1" to append the server's TIME to the
// reply; ARGV[3] the number of ops n; then seven fields per op:
//
//	Add: "a", N, Floor, Ceil, prior weight in ppm, index of the prior's key
//	     in KEYS (0: none), TTL in ms
//	Log: "l", N, room (Ceil − N), MINID of the first live entry,
//	     the batch instant's ms part, its sub-ms part (ns), window in ms
//
// Add cells are strings holding a decimal int64. A log is a stream whose
// entry IDs are <ms>-<sub×1e9+i>: ms and sub the entry's Unix ns split at the
// millisecond, i (1 up) its rank among the entries of that nanosecond.
//
// Reply: {fits (0/1), then three values per op, [TIME sec, TIME usec]}
//
//	Add: max(cell, Floor) as a string, the prior cell ("0" when none), ""
//	Log: live count before the append, ID of the entry whose expiry makes
//	     room ("" when none), ID of the newest entry ("" when none)
const luaBatch = `
local peek = ARGV[1] == '1'
local n = tonumber(ARGV[3])
local F = 7

-- Read every Add cell and prior cell of the batch in one MGET.
local names, cellAt, priorAt = {}, {}, {}
for i = 1, n do
  local a = 3 + (i - 1) * F
  if ARGV[a + 1] == 'a' then
    names[#names + 1] = KEYS[i]
    cellAt[i] = #names
    local p = tonumber(ARGV[a + 6])
    if p > 0 and tonumber(ARGV[a + 5]) > 0 then
      names[#names + 1] = KEYS[p]
      priorAt[i] = #names
    end
  end
end
local vals = {}
if #names > 0 then vals = redis.call('MGET', unpack(names)) end

-- splitid parses an entry ID into {ms, sub, i}.
local function splitid(id)
  local d = string.find(id, '-', 1, true)
  local seq = string.sub(id, d + 1)
  local sub, i = 0, tonumber(seq)
  if string.len(seq) > 9 then
    sub = tonumber(string.sub(seq, 1, string.len(seq) - 9))
    i = tonumber(string.sub(seq, -9))
  end
  return {tonumber(string.sub(id, 1, d - 1)), sub, i}
end

-- Evaluate.
local fits = true
local reply = {0}
local writes = {}
for i = 1, n do
  local a = 3 + (i - 1) * F
  local key = KEYS[i]
  if ARGV[a + 1] == 'a' then
    local v = vals[cellAt[i]]
    local cur = {0, 0}
    if v then cur = int(v) end
    local base = int(ARGV[a + 3])
    if int_le(base, cur) then base = cur end
    local after = int_add(base, int(ARGV[a + 2]))
    local prior, used = '0', {0, 0}
    if priorAt[i] and vals[priorAt[i]] then
      prior = vals[priorAt[i]]
      used = int_weighted(int(prior), tonumber(ARGV[a + 5]))
    end
    if not int_le(int_add(after, used), int(ARGV[a + 4])) then fits = false end
    writes[i] = int_str(after)
    reply[#reply + 1] = int_str(base)
    reply[#reply + 1] = prior
    reply[#reply + 1] = ''
  else
    -- Drop the entries at or before now - window, then count.
    redis.call('XTRIM', key, 'MINID', ARGV[a + 4])
    local count = redis.call('XLEN', key)
    local room = tonumber(ARGV[a + 3])
    local k = 1
    if count > room then
      fits = false
      k = count - room
    end
    local oldest, newest = '', ''
    if count > 0 then
      if k <= count then
        local r = redis.call('XRANGE', key, '-', '+', 'COUNT', tostring(k))
        oldest = r[k][1]
      end
      newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1][1]
    end
    writes[i] = newest
    reply[#reply + 1] = count
    reply[#reply + 1] = oldest
    reply[#reply + 1] = newest
  end
end

-- Write every op, or none.
if fits and not peek then
  local last = {} -- newest entry appended per stream key in this batch
  for i = 1, n do
    local a = 3 + (i - 1) * F
    local key = KEYS[i]
    if ARGV[a + 1] == 'a' then
      redis.call('SET', key, writes[i], 'PX', ARGV[a + 7])
    else
      local cnt = tonumber(ARGV[a + 2])
      if cnt > 0 then
        -- Entries are stamped max(now, newest) so IDs keep increasing.
        local nowms = tonumber(ARGV[a + 5])
        local at = {nowms, tonumber(ARGV[a + 6]), 0}
        local nw = last[key]
        if not nw and writes[i] ~= '' then nw = splitid(writes[i]) end
        if nw and (nw[1] > at[1] or (nw[1] == at[1] and nw[2] >= at[2])) then at = nw end
        local prefix = tostring(at[1]) .. '-'
        if at[2] > 0 then prefix = prefix .. tostring(at[2]) end
        for j = 1, cnt do
          local seq = at[3] + j
          if at[2] > 0 then
            redis.call('XADD', key, prefix .. pad9(seq), 'n', '1')
          else
            redis.call('XADD', key, prefix .. tostring(seq), 'n', '1')
          end
        end
        last[key] = {at[1], at[2], at[3] + cnt}
        redis.call('PEXPIRE', key, tostring(tonumber(ARGV[a + 7]) + (at[1] - nowms) + 1))
      end
    end
  end
end

if fits then reply[1] = 1 end
if ARGV[2] == '1' then
  local t = redis.call('TIME')
  reply[#reply + 1] = t[1]
  reply[#reply + 1] = t[2]
end
return reply
`

// batchScript runs one whole batch; see luaBatch.
var batchScript = newScript(luaInt + luaBatch)

// scriptSources maps a script's SHA1 to its source, for sending EVAL
// through the autopipeliner.
var scriptSources = map[string]string{}

// newScript returns the script of src and records its source. It runs at
// package initialisation only.
func newScript(src string) *goredis.Script {
	sc := goredis.NewScript(src)
	scriptSources[sc.Hash()] = src
	return sc
}
