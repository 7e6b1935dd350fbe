package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/store"
)

var _ store.Store = (*Store)(nil)

// Store is a [store.Store] kept in Redis, through a go-redis v9
// UniversalClient: a single node, Sentinel or Cluster.
//
// Every batch (one decision, all its limits) is one EVALSHA of one Lua
// script, so one command sent and one round trip, atomic in Redis. Add cells
// are strings holding a decimal int64, written with a PX expiry; logs are
// streams, trimmed with MINID; see docs/stores.md. All keys of a batch share
// the caller's hash tag, so batches run in Redis Cluster.
//
// A Store is safe for concurrent use and starts no goroutine (with
// WithAutoPipeline it uses the client's autopipeliner, whose goroutines the
// client owns and stops when closed). Close marks it closed; it never closes
// the client, which belongs to the caller. Its zero value is not usable;
// call New.
//
// For the other files of this package (the hybrid store's sync.go): the
// client field is the caller's client, run runs any script with EVALSHA and
// the NOSCRIPT fallback (through the autopipeliner when on), wrapErr maps a
// failure to store.ErrUnavailable, key encodes a store.Key with the prefix,
// and luaInt is the exact int64 Lua library scripts may prepend.
type Store struct {
	// client is the caller's client; never closed here.
	client goredis.UniversalClient
	// ap is the client's asynchronous autopipeliner (WithAutoPipeline),
	// or nil: decisions then go through client one by one.
	ap           *goredis.AutoPipeliner
	autoPipeline bool
	prefix       string // escaped, prepended to every key, outside the hash tag

	local  func() time.Time // WithServerTime's local clock, or nil
	offset atomic.Int64     // server − local, ns, from the latest reply

	// loaded holds the hashes of the scripts this store has run: the first
	// run of each is an EVAL, which runs and caches it in one command, so
	// that even a first decision on a fresh server costs one command.
	loaded sync.Map

	closed atomic.Bool
}

// Option configures a Store.
type Option func(*Store)

// WithPrefix prepends prefix, as given (end it with a separator, as in
// "myapp:"), to every key the store writes, so that several applications
// can share one Redis. The prefix is escaped like a key namespace, so it
// never holds a hash tag. The default is none.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = store.Escape(prefix) }
}

// WithServerTime makes the store measure the offset between local, the
// local clock, and the Redis server's clock (TIME, read inside the script
// with every decision), and serve the corrected time from [Store.Now]. Pass
// Store.Now to limiter.WithClock so that processes whose clocks disagree
// decide on one clock, the server's.
//
// What it guarantees: after the first reply, Now returns local time shifted
// by the offset measured at the latest reply, which is off from the
// server's clock by at most half of that reply's round trip plus the local
// clock's drift since (TIME has microsecond resolution). Decisions still use
// the instant the limiter passes in each batch, so the store never mixes two
// clocks within one decision. Before the first reply the offset is 0: call
// [Store.SyncTime] once before serving so that the first decisions agree
// too.
func WithServerTime(local func() time.Time) Option {
	return func(s *Store) { s.local = local }
}

// WithAutoPipeline sends decisions through the client's asynchronous
// autopipeliner (go-redis's AsyncAutoPipeline, experimental in go-redis
// v9.23): the EVALSHAs of concurrent decisions share pipelines, so many
// decisions cost one round trip. Each decision is still one command, and
// atomic. A decision still returns by the caller's deadline (the store stops
// waiting; the command, already queued, may still run and charge). The
// autopipeliner belongs to the client and stops when the client is closed;
// if the client cannot make one, decisions go one by one.
func WithAutoPipeline() Option {
	return func(s *Store) { s.autoPipeline = true }
}

// errNilClient is returned by every call of a store built with a nil client.
var errNilClient = fmt.Errorf("redis: %w: nil client", store.ErrUnavailable)

// New returns a store over client. It never closes client. A nil client
// gives a store whose every call fails with an error wrapping
// store.ErrUnavailable.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{client: client}
	for _, o := range opts {
		o(s)
	}
	if s.autoPipeline && client != nil {
		if ap, err := client.AsyncAutoPipeline(); err == nil {
			s.ap = ap
		}
	}
	return s
}

// Now returns the server-corrected time when the store was built with
// WithServerTime (see there), and the zero Time otherwise.
func (s *Store) Now() time.Time {
	if s.local == nil {
		return time.Time{}
	}
	return s.local().Add(time.Duration(s.offset.Load()))
}

// SyncTime measures the offset to the server's clock now, with one TIME
// command, for stores built with WithServerTime (it does nothing
// otherwise). Later decisions refresh the offset at no extra cost.
func (s *Store) SyncTime(ctx context.Context) error {
	if s.local == nil {
		return nil
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	if s.client == nil {
		return errNilClient
	}
	t0 := s.local()
	server, err := s.client.Time(ctx).Result()
	if err != nil {
		return s.wrapErr(err)
	}
	t1 := s.local()
	s.offset.Store(int64(server.Sub(t0.Add(t1.Sub(t0) / 2))))
	return nil
}

// Do implements store.Store: one EVALSHA of the batch script (EVAL when the
// server does not have it cached), whatever the batch holds.
func (s *Store) Do(ctx context.Context, b *store.Batch) error {
	b.Applied = false
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := b.Validate(); err != nil {
		return err
	}
	keys, args := s.encode(b)
	var t0 time.Time
	if s.local != nil {
		t0 = s.local()
	}
	reply, err := s.run(ctx, batchScript, keys, args...)
	if err != nil {
		return err
	}
	if err := s.decode(b, reply); err != nil {
		return err
	}
	if s.local != nil {
		s.learnOffset(t0, reply)
	}
	return nil
}

// fields is the number of ARGV fields per op; see luaBatch.
const fields = 7

// encode builds the script's KEYS and ARGV for b.
func (s *Store) encode(b *store.Batch) ([]string, []any) {
	nkeys := len(b.Ops)
	for i := range b.Ops {
		if op := &b.Ops[i]; op.Kind == store.Add && op.PriorWeight > 0 {
			nkeys++
		}
	}
	keys := make([]string, len(b.Ops), nkeys)
	args := make([]any, 3, 3+fields*len(b.Ops))
	args[0], args[1], args[2] = "0", "0", len(b.Ops)
	if b.Peek {
		args[0] = "1"
	}
	if s.local != nil {
		args[1] = "1"
	}
	for i := range b.Ops {
		op := &b.Ops[i]
		keys[i] = s.key(op.Key)
		switch op.Kind {
		case store.Add:
			prior := 0
			if op.PriorWeight > 0 {
				keys = append(keys, s.key(op.Prior))
				prior = len(keys) // 1-based index in KEYS
			}
			// go-redis sends int64s as decimal strings; the script
			// parses them exactly (luaInt).
			args = append(args, "a", op.N, op.Floor, op.Ceil,
				op.PriorWeight, prior, ceilMillis(op.TTL))
		default: // store.Log
			now := max(b.Now, 0) // stream IDs cannot go below 0-1
			cut := max(now-int64(op.Window)+1, 0)
			args = append(args, "l",
				op.N, op.Ceil-op.N,
				strconv.FormatInt(cut/1e6, 10)+"-"+strconv.FormatInt(cut%1e6*1e9, 10),
				now/1e6, now%1e6, ceilMillis(op.Window))
		}
	}
	return keys, args
}

// key returns the Redis key of k: prefix, then k's encoding, whose hash tag
// is the escaped caller.
func (s *Store) key(k store.Key) string {
	buf := make([]byte, 0, len(s.prefix)+len(k.Namespace)+len(k.Caller)+24)
	buf = append(buf, s.prefix...)
	return string(k.Append(buf))
}

// ceilMillis returns d in milliseconds, rounded up, at least 1.
func ceilMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return max(ms, 1)
}

// decode fills b.Results and b.Applied from the script's reply.
func (s *Store) decode(b *store.Batch, reply any) error {
	vals, ok := reply.([]any)
	if !ok || len(vals) < 1+3*len(b.Ops) {
		return s.badReply(reply)
	}
	fits, ok := vals[0].(int64)
	if !ok {
		return s.badReply(reply)
	}
	if cap(b.Results) < len(b.Ops) {
		b.Results = make([]store.Result, len(b.Ops))
	}
	b.Results = b.Results[:len(b.Ops)]
	applied := fits == 1
	for i := range b.Ops {
		op, r, v := &b.Ops[i], &b.Results[i], vals[1+3*i:4+3*i]
		*r = store.Result{}
		var err error
		switch op.Kind {
		case store.Add:
			if r.Value, err = parseInt(v[0]); err != nil {
				return s.badReply(reply)
			}
			if r.Prior, err = parseInt(v[1]); err != nil {
				return s.badReply(reply)
			}
			if applied {
				r.Value += op.N
			}
		default: // store.Log
			count, ok := v[0].(int64)
			if !ok {
				return s.badReply(reply)
			}
			if r.Oldest, err = parseID(v[1]); err != nil {
				return s.badReply(reply)
			}
			if r.Newest, err = parseID(v[2]); err != nil {
				return s.badReply(reply)
			}
			r.Value = count
			if applied && op.N > 0 {
				r.Value += op.N
				r.Newest = max(max(b.Now, 0), r.Newest)
				if count == 0 {
					r.Oldest = r.Newest
				}
			}
		}
	}
	b.Applied = applied
	return nil
}

func (s *Store) badReply(reply any) error {
	return fmt.Errorf("redis: %w: unexpected script reply %v", store.ErrUnavailable, reply)
}

func parseInt(v any) (int64, error) {
	str, ok := v.(string)
	if !ok {
		return 0, errors.New("not a string")
	}
	return strconv.ParseInt(str, 10, 64)
}

// parseID returns the Unix ns of a stream entry ID <ms>-<sub×1e9+i>, or 0
// for "".
func parseID(v any) (int64, error) {
	str, ok := v.(string)
	if !ok {
		return 0, errors.New("not a string")
	}
	if str == "" {
		return 0, nil
	}
	for i := 0; i < len(str); i++ {
		if str[i] == '-' {
			ms, err := strconv.ParseInt(str[:i], 10, 64)
			if err != nil {
				return 0, err
			}
			seq, err := strconv.ParseUint(str[i+1:], 10, 64)
			if err != nil {
				return 0, err
			}
			return ms*1e6 + int64(seq/1e9), nil
		}
	}
	return 0, errors.New("no dash in stream ID")
}

// learnOffset records server − local from the TIME at the end of reply,
// taking the local instant halfway through the round trip.
func (s *Store) learnOffset(t0 time.Time, reply any) {
	vals, _ := reply.([]any)
	if len(vals) < 2 {
		return
	}
	sec, err1 := parseInt(vals[len(vals)-2])
	usec, err2 := parseInt(vals[len(vals)-1])
	if err1 != nil || err2 != nil {
		return
	}
	t1 := s.local()
	mid := t0.Add(t1.Sub(t0) / 2)
	server := time.Unix(sec, usec*1e3)
	s.offset.Store(int64(server.Sub(mid)))
}

// run runs script with EVALSHA, falling back to EVAL when the server answers
// NOSCRIPT (go-redis's Script.Run), and returns its reply. Errors are mapped
// by wrapErr. The hybrid store's sync.go runs its scripts through it too.
func (s *Store) run(ctx context.Context, script *goredis.Script, keys []string, args ...any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrapErr(err)
	}
	if s.client == nil {
		return nil, errNilClient
	}
	if s.ap != nil {
		return s.runPipelined(ctx, script, keys, args)
	}
	if _, ok := s.loaded.Load(script.Hash()); !ok {
		reply, err := script.Eval(ctx, s.client, keys, args...).Result()
		if err != nil {
			return nil, s.wrapErr(err)
		}
		s.loaded.Store(script.Hash(), true)
		return reply, nil
	}
	reply, err := script.Run(ctx, s.client, keys, args...).Result()
	if err != nil {
		return nil, s.wrapErr(err)
	}
	return reply, nil
}

// runPipelined queues EVALSHA on the autopipeliner and waits for its reply
// or the end of ctx, whichever comes first. On NOSCRIPT it loads the script
// with the client (SCRIPT LOAD) and queues EVALSHA again.
func (s *Store) runPipelined(ctx context.Context, script *goredis.Script, keys []string, args []any) (any, error) {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	_, loaded := s.loaded.Load(script.Hash())
	if src, ok := scriptSources[script.Hash()]; ok && !loaded {
		cmdArgs = append(cmdArgs, "eval", src, len(keys)) // runs and caches it
	} else {
		cmdArgs = append(cmdArgs, "evalsha", script.Hash(), len(keys))
	}
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	for attempt := 0; ; attempt++ {
		cmd := goredis.NewCmd(ctx, cmdArgs...)
		if err := s.ap.Submit(ctx, cmd).WaitContext(ctx); err != nil {
			if attempt == 0 && goredis.HasErrorPrefix(err, "NOSCRIPT") {
				if err := script.Load(ctx, s.client).Err(); err != nil {
					return nil, s.wrapErr(err)
				}
				continue
			}
			return nil, s.wrapErr(err)
		}
		s.loaded.Store(script.Hash(), true)
		return cmd.Val(), nil
	}
}

// wrapErr maps a failure to reach or use Redis (refused, timeout, context
// deadline, OOM, CLUSTERDOWN, LOADING, READONLY, a script error) to an error
// wrapping store.ErrUnavailable and, with %w too, the cause; nil stays nil.
func (s *Store) wrapErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis: %w: %w", store.ErrUnavailable, err)
}

// Reset implements store.Store: it deletes the keys and advances the reset
// epoch of each that held a value (see store.Syncer: a hybrid store's
// flush does not bring back a value reset by another process), one script
// per caller (keys of one caller share a hash slot).
func (s *Store) Reset(ctx context.Context, keys ...store.Key) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if s.client == nil {
		return errNilClient
	}
	if len(keys) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return s.wrapErr(err)
	}
	groups := map[string][]string{}
	var order []string
	for _, k := range keys {
		if _, ok := groups[k.Caller]; !ok {
			order = append(order, k.Caller)
		}
		cell := s.key(k)
		groups[k.Caller] = append(groups[k.Caller], cell, epochKey(cell))
	}
	rest := order
	if _, loaded := s.loaded.Load(resetScript.Hash()); !loaded || len(order) == 1 || s.ap != nil {
		// One caller, or the script not yet loaded (the first reset loads
		// it), or autopipelining, which batches calls by itself.
		for len(rest) > 0 {
			if _, err := s.run(ctx, resetScript, groups[rest[0]]); err != nil {
				return err
			}
			if rest = rest[1:]; s.ap == nil {
				break
			}
		}
		if len(rest) == 0 {
			return nil
		}
	}
	// The other callers in one pipeline, one EVALSHA each.
	cmds, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, c := range rest {
			resetScript.EvalSha(ctx, p, groups[c])
		}
		return nil
	})
	if err == nil {
		return nil
	}
	for i, cmd := range cmds {
		switch err := cmd.Err(); {
		case err == nil:
		case goredis.HasErrorPrefix(err, "NOSCRIPT"): // the server forgot it
			if _, err := s.run(ctx, resetScript, groups[rest[i]]); err != nil {
				return err
			}
		default:
			return s.wrapErr(err)
		}
	}
	return s.wrapErr(ctx.Err())
}

// Close marks the store closed: later calls return store.ErrClosed. It is
// idempotent and never closes the client.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
