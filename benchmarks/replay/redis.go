package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redisstats"
)

// Server is where the strategies' Redis commands go: an embedded miniredis
// or a real server (single node or cluster).
type Server interface {
	// NewClient returns a new client, as a new process would open, whose
	// commands are counted by hook.
	NewClient(hook *redisstats.Counter) goredis.UniversalClient
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

func (e *embedded) NewClient(hook *redisstats.Counter) goredis.UniversalClient {
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
	r.admin = r.NewClient(new(redisstats.Counter))
	if err := r.admin.Ping(ctx).Err(); err != nil {
		_ = r.admin.Close()
		return nil, fmt.Errorf("replay: redis at %s: %w", strings.Join(addrs, ","), err)
	}
	return r, nil
}

func (r *remote) NewClient(hook *redisstats.Counter) goredis.UniversalClient {
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
	return redisstats.CommandStats(ctx, r.admin)
}

func (r *remote) Describe() string {
	if r.cluster {
		return "Redis Cluster " + strings.Join(r.addrs, ",")
	}
	return "Redis " + r.addrs[0]
}
func (r *remote) Close() error { return r.admin.Close() }

// deletePrefix removes the keys a run left under prefix.
func (r *remote) deletePrefix(ctx context.Context, prefix string) error {
	return redisstats.DeletePrefix(ctx, r.admin, prefix)
}
