package redistest

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestCounter checks the hook's counts: one command alone is one command
// and one round trip; a pipeline of three is three commands, one round trip;
// a script is one command whatever it runs.
func TestCounter(t *testing.T) {
	c, cnt, _ := Client(t)
	ctx := context.Background()
	prefix := Prefix(t)
	CleanupPrefix(t, c, prefix)
	// Warm up both the main and the pipeline connections.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error { p.Ping(ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	script := goredis.NewScript(`redis.call('SET', KEYS[1], '1'); redis.call('GET', KEYS[1]); return 1`)
	if err := script.Run(ctx, c, []string{prefix + "s"}).Err(); err != nil { // loads it
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		do           func() error
		cmds, rounds int64
	}{
		{"one command", func() error { return c.Set(ctx, prefix+"a", "1", 0).Err() }, 1, 1},
		{"pipeline of three", func() error {
			_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				p.Incr(ctx, prefix+"a")
				p.Incr(ctx, prefix+"a")
				p.Get(ctx, prefix+"a")
				return nil
			})
			return err
		}, 3, 1},
		{"script", func() error { return script.Run(ctx, c, []string{prefix + "s"}).Err() }, 1, 1},
	}
	for _, tt := range tests {
		cnt.Reset()
		if err := tt.do(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if cnt.Commands() != tt.cmds || cnt.RoundTrips() != tt.rounds {
			t.Errorf("%s: counted %d commands, %d round trips; want %d, %d", tt.name, cnt.Commands(), cnt.RoundTrips(), tt.cmds, tt.rounds)
		}
	}
}

// TestParseCommandStats checks the parsing of INFO commandstats and deltas.
func TestParseCommandStats(t *testing.T) {
	before, err := parseCommandStats("# Commandstats\r\ncmdstat_get:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=1,usec=5\r\n")
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseCommandStats("# Commandstats\r\ncmdstat_get:calls=5,usec=20\r\ncmdstat_evalsha:calls=2,usec=9\r\ncmdstat_info:calls=2,usec=9\r\n")
	if err != nil {
		t.Fatal(err)
	}
	d := StatsDelta(before, after)
	if len(d) != 2 || d["get"] != 2 || d["evalsha"] != 2 || Total(d) != 4 {
		t.Fatalf("StatsDelta = %v (total %d); want get:2 evalsha:2 (total 4), INFO left out", d, Total(d))
	}
	if _, err := parseCommandStats("cmdstat_get:calls=x"); err == nil {
		t.Fatal("parseCommandStats accepted calls=x")
	}
}

// TestServer starts, kills and restarts a throwaway redis-server.
func TestServer(t *testing.T) {
	NeedAddr(t) // an integration test: runs where redis-server is installed
	s := StartServer(t, 7150)
	c := goredis.NewClient(Options(s.Addr))
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Start()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("a restarted server kept data; want none (no persistence)")
	}
}
