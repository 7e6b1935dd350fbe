package redisstats

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Counter is a go-redis hook ([goredis.Hook]) that counts what a client
// sends: every command processed alone is one command and one round trip
// (EVALSHA and EVAL included, whatever the script runs inside Redis); a
// pipeline or transaction of n commands is n commands and one round trip.
// It also counts commands by name (go-redis's lower-case [goredis.Cmder]
// Name: "evalsha", "incr", "client" for CLIENT SETINFO).
//
// The commands go-redis sends on its own when it opens a connection (HELLO,
// CLIENT SETINFO; pipelines use connections of their own) pass through the
// hooks too: warm a client up, then Reset, before counting. A hook added to
// a [goredis.ClusterClient] sees a pipeline once, however many masters
// go-redis splits it over, so it counts one round trip for it.
//
// Add it with client.AddHook(c). A Counter is safe for concurrent use; its
// zero value is ready. It holds nothing that needs cleaning up.
type Counter struct {
	cmds, trips atomic.Int64

	mu     sync.Mutex
	byName map[string]int64 // guarded by mu; nil until the first command
}

var _ goredis.Hook = (*Counter)(nil)

// DialHook implements goredis.Hook; it counts nothing.
func (c *Counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook implements goredis.Hook: one command, one round trip.
func (c *Counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.count([]goredis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements goredis.Hook: len(cmds) commands, one round
// trip; an empty pipeline, which sends nothing, counts nothing.
func (c *Counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 {
			c.count(cmds)
		}
		return next(ctx, cmds)
	}
}

func (c *Counter) count(cmds []goredis.Cmder) {
	c.cmds.Add(int64(len(cmds)))
	c.trips.Add(1)
	c.mu.Lock()
	if c.byName == nil {
		c.byName = map[string]int64{}
	}
	for _, cmd := range cmds {
		c.byName[cmd.Name()]++
	}
	c.mu.Unlock()
}

// Commands returns the number of commands sent since the Counter was made
// or Reset.
func (c *Counter) Commands() int64 { return c.cmds.Load() }

// RoundTrips returns the number of round trips made since the Counter was
// made or Reset.
func (c *Counter) RoundTrips() int64 { return c.trips.Load() }

// ByName returns a copy of the command counts by lower-case name, commands
// not sent left out.
func (c *Counter) ByName() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := maps.Clone(c.byName)
	if out == nil {
		out = map[string]int64{}
	}
	return out
}

// Reset sets every count to zero. Commands sent while it runs may be
// counted in some counts and not in others.
func (c *Counter) Reset() {
	c.cmds.Store(0)
	c.trips.Store(0)
	c.mu.Lock()
	clear(c.byName)
	c.mu.Unlock()
}
