package redis

import (
	"context"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/store"
)

var _ store.Syncer = (*Store)(nil)

// luaSync is the body of syncScript: a chunk of the items of one slot group
// of a store.SyncBatch (a hybrid store's flush, lease request or
// first-sight read), the process heartbeat, and the batch id, in one atomic
// script.
//
// KEYS[1] the id key, KEYS[2] the heartbeat key (a sorted set of processes
// scored by the Unix ms at which their heartbeat expires), then two keys per
// item, in item order: its cell and the cell's reset epoch (see epochKey).
// All share one hash slot.
//
// ARGV[1] "1" when the batch has an id; ARGV[2] the id's TTL in ms;
// ARGV[3] the process ("" for none); ARGV[4] the heartbeat TTL in ms;
// ARGV[5] the batch instant in Unix ms; ARGV[6] the number of items; then
// six fields per item: kind ("a" add, "t" take), N, Floor, Ceil, TTL in ms,
// Epoch. An item whose Epoch is neither its cell's nor -1 (store.AnyEpoch),
// when the cell has an epoch key, is stale: its Floor is taken as 0, and
// quota it gives back (N < 0) is not taken off, the reset having voided
// it. A cell without an epoch key (never reset, or its keys lost in a
// restart) takes every item as current. A write to a cell keeps its epoch
// key alive as long as the cell.
//
// Reply: {live processes (0 without a process), results} where results is
// "value granted epoch value granted epoch …", decimal int64s.
//
// With an id, the script records under the id key that the chunk was
// applied: "-" when it has no take, else the grants, one per item, each
// with its cell's epoch ("grant@epoch"). A repeat of the id (a retry after a
// lost reply) applies nothing: it reports the cells as they are now and the
// grants recorded the first time, except a grant of a cell reset since,
// which the reset voided (0).
const luaSync = `
local live = 0
if ARGV[3] ~= '' then
  local nowms = tonumber(ARGV[5])
  local ttl = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[2], nowms + ttl, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowms)
  redis.call('PEXPIRE', KEYS[2], 2 * ttl)
  live = redis.call('ZCARD', KEYS[2])
end
local replay = nil
if ARGV[1] == '1' then
  local prev = redis.call('GET', KEYS[1])
  if prev then
    replay = {}
    if prev ~= '-' then
      for g in string.gmatch(prev, '%S+') do replay[#replay + 1] = g end
    end
  end
end

local function int_neg(a)
  if a[2] > 0 then return {-a[1] - 1, INT_B - a[2]} end
  return {-a[1], 0}
end
local ZERO = {0, 0}

-- join concatenates a list in two levels: Lua implementations bound the
-- size of one concat.
local function join(list)
  local parts = {}
  for i = 1, #list, 200 do
    parts[#parts + 1] = table.concat(list, ' ', i, math.min(i + 199, #list))
  end
  return table.concat(parts, ' ')
end

-- keep_epoch makes a cell's reset epoch live as long as the cell, once
-- the cell is written again after a reset.
local function keep_epoch(ek, ekey, ttl)
  if ek and redis.call('PTTL', ekey) < tonumber(ttl) then
    redis.call('PEXPIRE', ekey, ttl)
  end
end

local n = tonumber(ARGV[6])
local out, grants, takes = {}, {}, false
for i = 1, n do
  local a = 6 + (i - 1) * 6
  local key, ekey = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local ek = redis.call('GET', ekey)
  local epoch = ek or '0'
  local d = int(ARGV[a + 2])
  local floor = int(ARGV[a + 3])
  -- stale: the item was built from a view of the cell before a reset.
  local stale = ek and ARGV[a + 6] ~= '-1' and ek ~= ARGV[a + 6]
  if stale then floor = ZERO end
  local cur = redis.call('GET', key)
  local v = ZERO
  if cur then v = int(cur) end
  local granted = ZERO
  if replay then
    if int_le(v, floor) then v = floor end
    if replay[i] then
      -- "<grant>@<epoch>": a grant of a cell reset since is void.
      local g, e = string.match(replay[i], '^(-?%d+)@(%d+)$')
      if g and e == epoch then granted = int(g) end
    end
  elseif ARGV[a + 1] == 't' then
    takes = true
    if int_le(v, floor) then v = floor end
    local room = int_add(int(ARGV[a + 4]), int_neg(v))
    if int_le(d, room) then granted = d elseif int_le(ZERO, room) then granted = room end
    if not int_le(granted, ZERO) then
      v = int_add(v, granted)
      redis.call('SET', key, int_str(v), 'PX', ARGV[a + 5])
      keep_epoch(ek, ekey, ARGV[a + 5])
    end
  elseif int_le(d, ZERO) and int_le(ZERO, d) then
    if int_le(v, floor) then v = floor end
  elseif int_le(ZERO, d) then
    if int_le(v, floor) then v = floor end
    v = int_add(v, d)
    redis.call('SET', key, int_str(v), 'PX', ARGV[a + 5])
    keep_epoch(ek, ekey, ARGV[a + 5])
  elseif cur and not stale then
    -- Quota given back: on a live cell only, never below the floor, the
    -- cell keeping its expiry.
    v = int_add(v, d)
    if int_le(v, floor) then v = floor end
    local pttl = redis.call('PTTL', key)
    if pttl > 0 then
      redis.call('SET', key, int_str(v), 'PX', pttl)
    end
  elseif cur then
    -- Quota given back from before a reset: the reset voided it already.
  else
    v = floor
    if int_le(v, ZERO) then v = ZERO end
  end
  out[#out + 1] = int_str(v)
  out[#out + 1] = int_str(granted)
  out[#out + 1] = epoch
  grants[#grants + 1] = int_str(granted) .. '@' .. epoch
end
if ARGV[1] == '1' and not replay then
  local rec = '-'
  if takes then rec = join(grants) end
  redis.call('SET', KEYS[1], rec, 'PX', ARGV[2])
end
return {live, join(out)}
`

// syncScript runs one slot group of a sync batch; see luaSync.
var syncScript = newScript(luaInt + luaSync)

// syncFields is the number of ARGV fields per sync item.
const syncFields = 6

// Sync implements store.Syncer for the hybrid store: the items of b, grouped
// by Redis Cluster hash slot (one group on a single node), each group one
// EVALSHA of the sync script per MaxSyncItems items, which also registers
// the process's heartbeat and records the batch id in the group's slot.
// Groups run one after the other; a failure stops at the failed group, and
// sending b again with the same id completes it without applying the
// finished groups twice.
//
// Keys it writes besides the cells: <prefix>sync{<tag>}:hb, a sorted set of
// live processes, and <prefix>sync{<tag>}:id:<id>:<chunk>, the record of one
// applied chunk ("-", or its grants), kept for IDTTL; <tag> is "floodgate"
// on a single node and, in a cluster, a short tag of the group's slot. The
// heartbeat uses the batch's instant, so processes whose clocks disagree by
// more than the heartbeat TTL miscount each other.
func (s *Store) Sync(ctx context.Context, b *store.SyncBatch) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if s.client == nil {
		return errNilClient
	}
	b.Commands, b.Processes = 0, 0
	if cap(b.Results) < len(b.Items) {
		b.Results = make([]store.SyncResult, len(b.Items))
	}
	b.Results = b.Results[:len(b.Items)]
	_, cluster := s.client.(*goredis.ClusterClient)
	if !cluster {
		idx := make([]int, len(b.Items))
		for i := range idx {
			idx[i] = i
		}
		return s.syncGroup(ctx, b, "floodgate", idx)
	}
	groups := map[uint16][]int{}
	var order []uint16
	for i := range b.Items {
		slot := hashSlot(store.HashTag(b.Items[i].Key.Caller))
		if _, ok := groups[slot]; !ok {
			order = append(order, slot)
		}
		groups[slot] = append(groups[slot], i)
	}
	if len(order) == 0 { // a heartbeat alone
		order = append(order, hashSlot("floodgate"))
	}
	for _, slot := range order {
		if err := s.syncGroup(ctx, b, slotTag(slot), groups[slot]); err != nil {
			return err
		}
	}
	return nil
}

// MaxSyncItems is the most items one sync script call carries; a larger
// slot group is sent in several calls, so that no script blocks Redis for
// long.
const MaxSyncItems = 1000

// syncGroup runs the items idx of b, all in the slot of tag, as one script
// per MaxSyncItems items.
func (s *Store) syncGroup(ctx context.Context, b *store.SyncBatch, tag string, idx []int) error {
	for chunk := 0; ; chunk++ {
		n := min(len(idx), MaxSyncItems)
		if err := s.syncChunk(ctx, b, tag, chunk, idx[:n]); err != nil {
			return err
		}
		idx = idx[n:]
		if len(idx) == 0 {
			return nil
		}
	}
}

// syncChunk runs the items idx of b, all in the slot of tag, as one script.
func (s *Store) syncChunk(ctx context.Context, b *store.SyncBatch, tag string, chunk int, idx []int) error {
	keys := make([]string, 2, 2+2*len(idx))
	base := s.prefix + "sync{" + tag + "}:"
	keys[0] = base + "id:" + b.ID + ":" + strconv.Itoa(chunk)
	keys[1] = base + "hb"
	args := make([]any, 6, 6+syncFields*len(idx))
	args[0], args[1], args[2], args[3] = "0", ceilMillis(b.IDTTL), b.Process, ceilMillis(b.HeartbeatTTL)
	if b.ID != "" {
		args[0] = "1"
	}
	args[4], args[5] = b.Now/1e6, len(idx)
	for _, i := range idx {
		it := &b.Items[i]
		cell := s.key(it.Key)
		keys = append(keys, cell, epochKey(cell))
		kind := "a"
		if it.Kind == store.SyncTake {
			kind = "t"
		}
		args = append(args, kind,
			strconv.FormatInt(it.N, 10),
			strconv.FormatInt(it.Floor, 10),
			strconv.FormatInt(it.Ceil, 10),
			ceilMillis(it.TTL),
			strconv.FormatInt(it.Epoch, 10))
	}
	b.Commands++
	reply, err := s.run(ctx, syncScript, keys, args...)
	if err != nil {
		return err
	}
	vals, ok := reply.([]any)
	if !ok || len(vals) != 2 {
		return s.badReply(reply)
	}
	live, ok1 := vals[0].(int64)
	res, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return s.badReply(reply)
	}
	fields := strings.Fields(res)
	if len(fields) != 3*len(idx) {
		return s.badReply(reply)
	}
	for j, i := range idx {
		v, err1 := strconv.ParseInt(fields[3*j], 10, 64)
		g, err2 := strconv.ParseInt(fields[3*j+1], 10, 64)
		e, err3 := strconv.ParseInt(fields[3*j+2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return s.badReply(reply)
		}
		b.Results[i] = store.SyncResult{Value: v, Granted: g, Epoch: e}
	}
	b.Processes = max(b.Processes, int(live))
	return nil
}

// luaReset is the body of resetScript: KEYS are pairs of a cell and its
// reset epoch key. Each cell is deleted; when it held a value with an
// expiry, its epoch is advanced and kept at least until the cell would
// have expired, as long as a process may hold a view of it.
const luaReset = `
for i = 1, #KEYS, 2 do
  local pttl = redis.call('PTTL', KEYS[i])
  redis.call('DEL', KEYS[i])
  if pttl > 0 then
    redis.call('INCR', KEYS[i + 1])
    if redis.call('PTTL', KEYS[i + 1]) < pttl then
      redis.call('PEXPIRE', KEYS[i + 1], pttl)
    end
  end
end
return 0
`

// resetScript resets one caller's keys; see luaReset.
var resetScript = newScript(luaReset)

// epochKey returns the key of the reset epoch of the cell stored at key:
// the cell's key with ":r" appended, in the same hash slot, and never a
// cell's key (those end in the window number).
func epochKey(key string) string { return key + ":r" }

// hashSlot returns the Redis Cluster slot of a key (its hash tag's, when it
// has one): CRC16-XMODEM modulo 16384.
func hashSlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

var (
	slotTagsOnce sync.Once
	slotTags     []string
)

// slotTag returns a short hash tag whose slot is slot, so that the id and
// heartbeat keys of a group land with the group's cells.
func slotTag(slot uint16) string {
	slotTagsOnce.Do(func() {
		slotTags = make([]string, 16384)
		left := len(slotTags)
		for i := 0; left > 0; i++ {
			t := "fg" + strconv.Itoa(i)
			if sl := hashSlot(t); slotTags[sl] == "" {
				slotTags[sl] = t
				left--
			}
		}
	})
	return slotTags[slot]
}
