package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	goredis "github.com/redis/go-redis/v9"
)

// Counter is a go-redis hook that counts the commands a client sends and
// the round trips it makes, by command name. A pipeline is one round trip.
// It is safe for concurrent use.
type Counter struct {
	cmds   atomic.Int64
	trips  atomic.Int64
	mu     sync.Mutex
	byName map[string]int64
}

var _ goredis.Hook = (*Counter)(nil)

// NewCounter returns a counter at zero.
func NewCounter() *Counter { return &Counter{byName: map[string]int64{}} }

// Commands returns the number of commands sent.
func (c *Counter) Commands() int64 { return c.cmds.Load() }

// RoundTrips returns the number of round trips made.
func (c *Counter) RoundTrips() int64 { return c.trips.Load() }

// ByName returns a copy of the per-command counts, names in lower case.
func (c *Counter) ByName() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byName))
	for k, v := range c.byName {
		out[k] = v
	}
	return out
}

func (c *Counter) add(cmds []goredis.Cmder) {
	c.cmds.Add(int64(len(cmds)))
	c.trips.Add(1)
	c.mu.Lock()
	for _, cmd := range cmds {
		c.byName[strings.ToLower(cmd.Name())]++
	}
	c.mu.Unlock()
}

// DialHook implements goredis.Hook.
func (c *Counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook implements goredis.Hook.
func (c *Counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.add([]goredis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements goredis.Hook.
func (c *Counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 {
			c.add(cmds)
		}
		return next(ctx, cmds)
	}
}

// Server is where the strategies' Redis commands go: an embedded miniredis
// or a real server (single node or cluster).
type Server interface {
	// NewClient returns a new client, as a new process would open, whose
	// commands are counted by hook.
	NewClient(hook *Counter) goredis.UniversalClient
	// Stats returns the server's cumulative count of executed commands by
	// lower-case name, commands run inside scripts included.
	Stats(ctx context.Context) (map[string]int64, error)
	// Describe names the server for the report.
	Describe() string
	// Close releases what the Server owns, never a server it did not start.
	Close() error
}

// embedded is a miniredis server in this process; its pre-hook counts every
// command it executes, like INFO commandstats does on a real server.
type embedded struct {
	m      *miniredis.Miniredis
	mu     sync.Mutex
	byName map[string]int64
}

func newEmbedded() (*embedded, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("replay: start miniredis: %w", err)
	}
	e := &embedded{m: m, byName: map[string]int64{}}
	m.Server().SetPreHook(func(_ *server.Peer, cmd string, _ ...string) bool {
		e.mu.Lock()
		e.byName[strings.ToLower(cmd)]++
		e.mu.Unlock()
		return false
	})
	return e, nil
}

func (e *embedded) NewClient(hook *Counter) goredis.UniversalClient {
	c := goredis.NewClient(&goredis.Options{
		Addr: "miniredis",
		// An in-memory pipe: no socket, no syscall per command.
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			client, server := bufPipe()
			e.m.Server().ServeConn(server)
			return client, nil
		},
		// One connection per simulated process is all a sequential
		// replay uses; keep the pool small.
		PoolSize:        4,
		DisableIdentity: true,
	})
	c.AddHook(hook)
	return c
}

func (e *embedded) Stats(context.Context) (map[string]int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.byName))
	for k, v := range e.byName {
		out[k] = v
	}
	return out, nil
}

func (e *embedded) Describe() string { return "embedded miniredis v2.40.0" }
func (e *embedded) Close() error     { e.m.Close(); return nil }

// remote is a real Redis server or cluster that this program did not start.
type remote struct {
	addrs   []string
	cluster bool
	admin   goredis.UniversalClient
}

func newRemote(ctx context.Context, addrs []string, cluster bool) (*remote, error) {
	r := &remote{addrs: addrs, cluster: cluster}
	r.admin = r.NewClient(NewCounter())
	if err := r.admin.Ping(ctx).Err(); err != nil {
		_ = r.admin.Close()
		return nil, fmt.Errorf("replay: redis at %s: %w", strings.Join(addrs, ","), err)
	}
	return r, nil
}

func (r *remote) NewClient(hook *Counter) goredis.UniversalClient {
	var c goredis.UniversalClient
	if r.cluster {
		c = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: r.addrs, DisableIdentity: true})
	} else {
		c = goredis.NewClient(&goredis.Options{Addr: r.addrs[0], DisableIdentity: true})
	}
	c.AddHook(hook)
	return c
}

func (r *remote) Stats(ctx context.Context) (map[string]int64, error) {
	total := map[string]int64{}
	var mu sync.Mutex
	collect := func(ctx context.Context, c *goredis.Client) error {
		info, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		m, err := parseCommandStats(info)
		if err != nil {
			return err
		}
		mu.Lock()
		for k, v := range m {
			total[k] += v
		}
		mu.Unlock()
		return nil
	}
	var err error
	switch c := r.admin.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, collect)
	case *goredis.Client:
		err = collect(ctx, c)
	default:
		err = errors.New("unexpected client type")
	}
	if err != nil {
		return nil, fmt.Errorf("replay: INFO commandstats: %w", err)
	}
	return total, nil
}

func (r *remote) Describe() string {
	if r.cluster {
		return "Redis Cluster " + strings.Join(r.addrs, ",")
	}
	return "Redis " + r.addrs[0]
}
func (r *remote) Close() error { return r.admin.Close() }

// parseCommandStats reads the calls of each command from the commandstats
// section of INFO: lines such as
//
//	cmdstat_incr:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0
//
// Subcommands (cmdstat_client|setinfo) keep their full name.
func parseCommandStats(info string) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		for _, field := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			if k != "calls" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("replay: bad commandstats line %q", line)
			}
			out[strings.ToLower(name)] += n
		}
	}
	return out, sc.Err()
}

// statsDelta returns after − before per command, dropping zero entries and
// the commands the measurement itself runs (INFO).
func statsDelta(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 && k != "info" {
			out[k] = d
		}
	}
	return out
}

// sum adds the counts of the given names, or of all names when none given.
func sum(m map[string]int64, names ...string) int64 {
	var n int64
	if len(names) == 0 {
		for _, v := range m {
			n += v
		}
		return n
	}
	for _, name := range names {
		n += m[name]
	}
	return n
}

// formatCounts renders counts as "evalsha 12, incr 3", largest first.
func formatCounts(m map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var s []kv
	for k, v := range m {
		s = append(s, kv{k, v})
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].v != s[j].v {
			return s[i].v > s[j].v
		}
		return s[i].k < s[j].k
	})
	parts := make([]string, len(s))
	for i, e := range s {
		parts[i] = e.k + " " + strconv.FormatInt(e.v, 10)
	}
	return strings.Join(parts, ", ")
}

// deletePrefix removes the keys a run left under prefix.
func (r *remote) deletePrefix(ctx context.Context, prefix string) error {
	del := func(ctx context.Context, c *goredis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			for _, k := range batch { // keys may hash to different slots
				if err := c.Unlink(ctx, k).Err(); err != nil {
					return err
				}
			}
			batch = batch[:0]
			return nil
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) >= 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	switch c := r.admin.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, del)
	case *goredis.Client:
		return del(ctx, c)
	}
	return nil
}
