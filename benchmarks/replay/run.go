package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/floodgate-go/floodgate/internal/redisstats"
)

// SimClock is the simulated clock every strategy reads: the replay sets it
// before each request and each tick. It is safe for concurrent use.
type SimClock struct{ ns atomic.Int64 }

// NewSimClock returns a clock at t.
func NewSimClock(t time.Time) *SimClock {
	c := &SimClock{}
	c.Set(t)
	return c
}

// Now returns the simulated time.
func (c *SimClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set moves the clock to t.
func (c *SimClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// replayStart is the first simulated instant: a day boundary, so that every
// strategy starts its day at zero, as the exact model does.
var replayStart = time.Date(2026, 1, 27, 0, 0, 0, 0, time.UTC)

// Result is the outcome of replaying the workload through one strategy.
type Result struct {
	Spec     StrategySpec
	Requests int64
	Duration time.Duration // simulated

	Commands   int64            // sent by the clients (hook)
	RoundTrips int64            // made by the clients (hook)
	ClientCmds map[string]int64 // sent, by name
	ServerCmds map[string]int64 // executed by the server, by name (nil if unknown)

	Exact     *Exact
	Latency   *Histogram
	PerMinute []int64 // commands sent in each simulated minute
	Wall      time.Duration
	Extra     string // strategy-specific remark
}

// CommandsPerHour returns the commands sent per simulated hour.
func (r *Result) CommandsPerHour() float64 { return float64(r.Commands) / r.Duration.Hours() }

// CommandsPerRequest returns the commands sent per request.
func (r *Result) CommandsPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Commands) / float64(r.Requests)
}

// CostPerDay returns the daily cost at price per 10,000 commands.
func (r *Result) CostPerDay(price float64) float64 {
	return r.CommandsPerHour() * 24 / 10_000 * price
}

// ServerSent returns what the server executed of the commands the clients
// sent (by name), for comparison with Commands: a server also counts the
// commands that scripts run, under their own names, and the connection
// handshake, which no hook sees.
func (r *Result) ServerSent() int64 {
	var n int64
	for name := range r.ClientCmds {
		n += r.ServerCmds[name]
	}
	return n
}

// Progress reports how far a replay got.
type Progress struct {
	done atomic.Int64
}

// Run replays w through the strategy spec builds, with one fresh exact
// model, and returns the measured result. srv counts the server's commands
// before and after.
func Run(ctx context.Context, w Workload, p Policy, spec StrategySpec, srv Server, prefix string, interval time.Duration, prog *Progress) (*Result, error) {
	clock := NewSimClock(replayStart)
	hook := new(redisstats.Counter)
	env := &Env{
		Policy: p, Procs: w.Procs, Tenants: w.Tenants, Prefix: prefix,
		Interval: interval, Clock: clock,
		NewClient: func() RedisClient { return srv.NewClient(hook) },
	}
	before, err := srv.Stats(ctx)
	if err != nil {
		return nil, err
	}
	s, err := spec.Build(env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Key, err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = s.Close()
		}
	}()

	res := &Result{Spec: spec, Duration: w.Duration, Exact: NewExact(p, w.Tenants), Latency: new(Histogram)}
	// Background work of process i is due at next[i]; processes are
	// staggered over one period, as real processes are not in step.
	every := s.Every()
	next := make([]time.Duration, w.Procs)
	for i := range next {
		next[i] = every + time.Duration(int64(every)*int64(i)/int64(w.Procs))
	}
	minute, lastCmds := int64(0), int64(0)
	rollTo := func(at time.Duration) { // close the simulated minutes before at
		for m := int64(at / time.Minute); minute < m; minute++ {
			c := hook.Commands()
			res.PerMinute = append(res.PerMinute, c-lastCmds)
			lastCmds = c
		}
	}
	tick := func(upTo time.Duration) error {
		if every <= 0 {
			return nil
		}
		for {
			i := 0
			for j := range next {
				if next[j] < next[i] {
					i = j
				}
			}
			if next[i] > upTo {
				return nil
			}
			rollTo(next[i])
			t := replayStart.Add(next[i])
			clock.Set(t)
			if err := s.Tick(ctx, i, t); err != nil {
				return fmt.Errorf("%s: process %d at %v: %w", spec.Key, i, next[i], err)
			}
			next[i] += every
		}
	}

	wall := time.Now()
	gen := NewGenerator(w)
	for {
		req, ok := gen.Next()
		if !ok {
			break
		}
		if err := tick(req.At); err != nil {
			return nil, err
		}
		rollTo(req.At)
		now := replayStart.Add(req.At)
		clock.Set(now)
		t0 := time.Now()
		allowed, err := s.Allow(ctx, req.Proc, req.Tenant, now)
		res.Latency.Add(time.Since(t0))
		if err != nil {
			return nil, fmt.Errorf("%s: request at %v: %w", spec.Key, req.At, err)
		}
		res.Exact.Record(req.Tenant, now, allowed)
		res.Requests++
		if prog != nil && res.Requests&1023 == 0 {
			prog.done.Store(res.Requests)
		}
		if res.Requests&4095 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if err := tick(w.Duration - 1); err != nil {
		return nil, err
	}
	rollTo(w.Duration)
	res.Wall = time.Since(wall)
	res.Commands, res.RoundTrips, res.ClientCmds = hook.Commands(), hook.RoundTrips(), hook.ByName()
	after, err := srv.Stats(ctx)
	if err != nil {
		return nil, err
	}
	res.ServerCmds = redisstats.Delta(before, after)
	if ps, ok := s.(*periodic); ok {
		res.Extra = periodicRemark(ps.RedisDayTotal(), res.Exact.Admitted)
	}
	if fs, ok := s.(*floodgateStrategy); ok {
		res.Extra = fs.remark()
	}
	if prog != nil {
		prog.done.Store(res.Requests)
	}
	closed = true
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("%s: close: %w", spec.Key, err)
	}
	return res, nil
}

// periodicRemark compares the day totals the periodic strategy's Redis
// holds with the requests its processes admitted, and explains the
// difference the way it goes: above, each sync pushed whole counts again;
// below, the counts admitted since each process's last sync were never
// pushed (a short run, or many tenants).
func periodicRemark(redisTotal, admitted int64) string {
	s := fmt.Sprintf("Redis's day counters say %d requests; the processes admitted %d", redisTotal, admitted)
	switch {
	case redisTotal > admitted:
		s += fmt.Sprintf(" (%.1f×: whole counts pushed every sync)", float64(redisTotal)/float64(max(admitted, 1)))
	case redisTotal < admitted:
		s += " (fewer: what each process admitted since its last sync, every 30 s, was not pushed yet)"
	}
	return s
}
