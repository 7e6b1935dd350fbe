package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	fgredis "github.com/floodgate-go/floodgate/store/redis"
)

// floodgateSpecs returns the strategies built on floodgate's stores.
func floodgateSpecs() []StrategySpec {
	return []StrategySpec{
		{Key: "redis", Name: "floodgate Redis store", EmbeddedSpan: time.Minute,
			Build: func(env *Env) (Strategy, error) { return newFloodgate(env, nil) }},
		{Key: "relaxed", Name: "floodgate hybrid, relaxed", EmbeddedSpan: 10 * time.Minute,
			Build: func(env *Env) (Strategy, error) { return newFloodgate(env, []hybrid.Option{}) }},
		{Key: "strict", Name: "floodgate hybrid, strict", EmbeddedSpan: 10 * time.Minute,
			Build: func(env *Env) (Strategy, error) { return newFloodgate(env, []hybrid.Option{hybrid.Strict()}) }},
	}
}

// floodgateStrategy runs one limiter per process, each over its own client:
// directly on the Redis store, or on a hybrid store over it (hybrid options
// not nil), flushed by Tick every interval of simulated time.
type floodgateStrategy struct {
	env      *Env
	clients  []RedisClient
	remotes  []*fgredis.Store
	hybrids  []*hybrid.Store
	limiters []*limiter.Limiter
	tenants  []string
}

func newFloodgate(env *Env, hopts []hybrid.Option) (_ *floodgateStrategy, err error) {
	s := &floodgateStrategy{env: env}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	for i := range env.Tenants {
		s.tenants = append(s.tenants, "tenant-"+strconv.Itoa(i))
	}
	alg := algorithms.FixedWindow(limiter.PerMinute(env.Policy.PerMinute), limiter.PerDay(env.Policy.PerDay))
	for p := range env.Procs {
		c := env.NewClient()
		s.clients = append(s.clients, c)
		rs := fgredis.New(c, fgredis.WithPrefix(env.Prefix+":"))
		s.remotes = append(s.remotes, rs)
		var st store.Store = rs
		if hopts != nil {
			opts := append([]hybrid.Option{
				hybrid.WithoutFlusher(), // Tick flushes, in simulated time
				hybrid.WithClock(env.Clock.Now),
				hybrid.WithSyncInterval(env.Interval),
				hybrid.WithProcessID(env.Prefix + ":proc" + strconv.Itoa(p)),
				// Simulated time runs hundreds of times faster than real
				// time: real-time bounds on remote calls mean nothing here.
				hybrid.WithRemoteTimeout(time.Minute),
				hybrid.WithFlushTimeout(time.Minute),
			}, hopts...)
			h, err := hybrid.NewChecked(rs, opts...)
			if err != nil {
				return nil, err
			}
			s.hybrids = append(s.hybrids, h)
			st = h
		}
		lim, err := limiter.New(alg, limiter.WithStore(st), limiter.WithClock(env.Clock.Now))
		if err != nil {
			return nil, err
		}
		s.limiters = append(s.limiters, lim)
	}
	return s, nil
}

func (s *floodgateStrategy) Allow(ctx context.Context, proc, tenant int, _ time.Time) (bool, error) {
	res, err := s.limiters[proc].Allow(ctx, s.tenants[tenant])
	return res.Allowed, err
}

func (s *floodgateStrategy) Every() time.Duration {
	if s.hybrids == nil {
		return 0
	}
	return s.env.Interval
}

func (s *floodgateStrategy) Tick(ctx context.Context, proc int, _ time.Time) error {
	if s.hybrids == nil {
		return nil
	}
	return s.hybrids[proc].Flush(ctx)
}

// remark sums the hybrid stores' statistics.
func (s *floodgateStrategy) remark() string {
	if s.hybrids == nil {
		return ""
	}
	var t hybrid.Stats
	for _, h := range s.hybrids {
		st := h.Stats()
		t.Flushes += st.Flushes
		t.FlushFailures += st.FlushFailures
		t.RemoteCommands += st.RemoteCommands
		t.LeaseRequests += st.LeaseRequests
		t.PassThrough += st.PassThrough
		t.DroppedDeltas += st.DroppedDeltas
	}
	return fmt.Sprintf("%d flushes (%d failed), %d lease requests on the decision path, %d dropped deltas; the stores counted %d remote commands",
		t.Flushes, t.FlushFailures, t.LeaseRequests, t.DroppedDeltas, t.RemoteCommands)
}

func (s *floodgateStrategy) Close() error {
	var errs []error
	for _, l := range s.limiters {
		errs = append(errs, l.Close())
	}
	for _, h := range s.hybrids {
		errs = append(errs, h.Close())
	}
	for _, r := range s.remotes {
		errs = append(errs, r.Close())
	}
	errs = append(errs, closeAll(s.clients))
	return errors.Join(errs...)
}
