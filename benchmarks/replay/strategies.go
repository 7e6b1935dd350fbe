package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Strategy is one way of enforcing the policy across the simulated
// processes. The replay calls Allow for each request and Tick for each
// process every Every() of simulated time (processes staggered evenly),
// from one goroutine, with times that never go backwards.
type Strategy interface {
	// Allow decides one request of tenant, served by process proc, at now.
	Allow(ctx context.Context, proc, tenant int, now time.Time) (bool, error)
	// Every returns the period of the strategy's background work per
	// process, 0 for none.
	Every() time.Duration
	// Tick runs process proc's background work (a sync, a flush) due at now.
	Tick(ctx context.Context, proc int, now time.Time) error
	// Close releases the strategy's clients and stores.
	Close() error
}

// StrategySpec names a strategy and builds it for one run.
type StrategySpec struct {
	Key   string // short flag name
	Name  string // label in the table
	Build func(env *Env) (Strategy, error)
	// EmbeddedSpan, when positive, caps the simulated time this strategy
	// replays on the embedded miniredis (unless -full): miniredis runs each
	// Lua script in a fresh interpreter, hundreds of times slower than
	// Redis, and a strategy that runs a script per request or many per
	// second would take minutes. Per-hour figures are then measured over
	// the shorter span.
	EmbeddedSpan time.Duration
}

// Env is what a strategy is built from.
type Env struct {
	Policy   Policy
	Procs    int
	Tenants  int
	Prefix   string // key prefix unique to this strategy and run
	Interval time.Duration
	Clock    *SimClock
	// NewClient opens a counted client to the strategy's Redis, one per
	// process.
	NewClient func() RedisClient
}

// keyer builds the naive scheme's key names without fmt.
type keyer struct{ buf []byte }

func (k *keyer) key(prefix, kind string, tenant int, window int64) string {
	b := append(k.buf[:0], prefix...)
	b = append(b, ":t"...)
	b = strconv.AppendInt(b, int64(tenant), 10)
	b = append(b, ':')
	b = append(b, kind...)
	b = append(b, ':')
	b = strconv.AppendInt(b, window, 10)
	k.buf = b
	return string(b)
}

// naive is the incident's middleware: for every request, INCR the tenant's
// minute key and day key, each followed by EXPIRE when the INCR created it,
// and admit when both counts are within the limits. It sends 2 to 4
// commands in as many round trips per request, and charges denied requests
// too.
type naive struct {
	env     *Env
	clients []goredis.UniversalClient
	k       keyer
}

func newNaive(env *Env) (Strategy, error) {
	s := &naive{env: env}
	for range env.Procs {
		s.clients = append(s.clients, env.NewClient())
	}
	return s, nil
}

func (s *naive) Allow(ctx context.Context, proc, tenant int, now time.Time) (bool, error) {
	c := s.clients[proc]
	sec := now.Unix()
	count := func(kind string, window int64, ttl time.Duration) (int64, error) {
		key := s.k.key(s.env.Prefix, kind, tenant, window)
		n, err := c.Incr(ctx, key).Result()
		if err != nil {
			return 0, err
		}
		if n == 1 {
			if err := c.Expire(ctx, key, ttl).Err(); err != nil {
				return 0, err
			}
		}
		return n, nil
	}
	m, err := count("m", sec/60, time.Minute)
	if err != nil {
		return false, err
	}
	d, err := count("d", sec/86400, 24*time.Hour)
	if err != nil {
		return false, err
	}
	return m <= s.env.Policy.PerMinute && d <= s.env.Policy.PerDay, nil
}

func (s *naive) Every() time.Duration                       { return 0 }
func (s *naive) Tick(context.Context, int, time.Time) error { return nil }
func (s *naive) Close() error                               { return closeAll(s.clients) }

// periodic is the hasty fix, reproduced with its bugs as the baseline it
// is: each process counts admitted requests in memory and enforces the limit
// on its own counts alone; every 30 s it pushes its WHOLE local counts (not
// the increase since the last push) to Redis with INCRBY, in one pipeline,
// and reads the totals back from the replies, which only a dashboard uses.
// N processes admit up to N times the limit, and Redis counts every request
// once per push it survives.
type periodic struct {
	env     *Env
	clients []goredis.UniversalClient
	local   [][]localCount // [proc][tenant]
	k       keyer

	global []int64 // day totals Redis last reported, per tenant
}

type localCount struct {
	minute, day     int64 // window indexes
	inMinute, inDay int64
}

func newPeriodic(env *Env) (Strategy, error) {
	s := &periodic{env: env, global: make([]int64, env.Tenants)}
	for range env.Procs {
		s.clients = append(s.clients, env.NewClient())
		s.local = append(s.local, make([]localCount, env.Tenants))
	}
	return s, nil
}

func (s *periodic) roll(l *localCount, now time.Time) {
	sec := now.Unix()
	if m := sec / 60; l.minute != m {
		l.minute, l.inMinute = m, 0
	}
	if d := sec / 86400; l.day != d {
		l.day, l.inDay = d, 0
	}
}

func (s *periodic) Allow(_ context.Context, proc, tenant int, now time.Time) (bool, error) {
	l := &s.local[proc][tenant]
	s.roll(l, now)
	if l.inMinute >= s.env.Policy.PerMinute || l.inDay >= s.env.Policy.PerDay {
		return false, nil
	}
	l.inMinute++
	l.inDay++
	return true, nil
}

func (s *periodic) Every() time.Duration { return 30 * time.Second }

func (s *periodic) Tick(ctx context.Context, proc int, now time.Time) error {
	type pushed struct {
		tenant int
		day    *goredis.IntCmd
	}
	var out []pushed
	_, err := s.clients[proc].Pipelined(ctx, func(p goredis.Pipeliner) error {
		for t := range s.local[proc] {
			l := &s.local[proc][t]
			if l.inDay == 0 {
				continue
			}
			if l.inMinute > 0 {
				p.IncrBy(ctx, s.k.key(s.env.Prefix, "m", t, l.minute), l.inMinute)
			}
			out = append(out, pushed{t, p.IncrBy(ctx, s.k.key(s.env.Prefix, "d", t, l.day), l.inDay)})
		}
		return nil
	})
	if err != nil && len(out) > 0 {
		return fmt.Errorf("periodic sync: %w", err)
	}
	for _, p := range out {
		s.global[p.tenant] = p.day.Val() // what the dashboard shows
	}
	return nil
}

// RedisDayTotal returns the day totals Redis holds, summed over tenants.
func (s *periodic) RedisDayTotal() int64 {
	var n int64
	for _, v := range s.global {
		n += v
	}
	return n
}

func (s *periodic) Close() error { return closeAll(s.clients) }

func closeAll(clients []goredis.UniversalClient) error {
	var first error
	for _, c := range clients {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// RedisClient is the client type the strategies use.
type RedisClient = goredis.UniversalClient
