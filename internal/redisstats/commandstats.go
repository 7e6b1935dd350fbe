package redisstats

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// infoer is the one method of a go-redis client that CommandStats needs.
type infoer interface {
	Info(ctx context.Context, section ...string) *goredis.StringCmd
}

// CommandStats returns the calls column of INFO commandstats: command name
// in lower case ("evalsha", "incr", "client|setinfo") to the number of
// calls since the server started or CONFIG RESETSTAT, commands run inside
// scripts included. On a [goredis.ClusterClient] it asks every master and
// returns the sums (replicas, which execute the masters' writes again, are
// left out); any other client is asked once, as one server.
//
// The INFO calls it makes are counted by the server too; Delta leaves them
// out.
func CommandStats(ctx context.Context, c goredis.UniversalClient) (map[string]int64, error) {
	var (
		stats map[string]int64
		err   error
	)
	if cc, ok := c.(*goredis.ClusterClient); ok {
		stats, err = masterCommandStats(ctx, cc)
	} else {
		stats, err = commandStats(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstats: INFO commandstats: %w", err)
	}
	return stats, nil
}

// masterCommandStats sums the command stats of every master of c.
func masterCommandStats(ctx context.Context, c *goredis.ClusterClient) (map[string]int64, error) {
	var mu sync.Mutex
	total := map[string]int64{}
	err := c.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
		stats, err := commandStats(ctx, node)
		if err != nil {
			return fmt.Errorf("master %s: %w", node.Options().Addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for name, n := range stats {
			total[name] += n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return total, nil
}

// commandStats reads and parses INFO commandstats of one server.
func commandStats(ctx context.Context, c infoer) (map[string]int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info)
}

// parseCommandStats reads the calls of each command from the commandstats
// section of INFO, lines such as
//
//	cmdstat_incr:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0
//
// Subcommands keep their full name ("client|setinfo"); other lines are
// skipped.
func parseCommandStats(info string) (map[string]int64, error) {
	stats := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if name, ok = strings.CutPrefix(name, "cmdstat_"); !ok {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			v, ok := strings.CutPrefix(field, "calls=")
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
			stats[strings.ToLower(name)] += n
		}
	}
	return stats, sc.Err()
}

// Delta returns after − before per command, leaving out the INFO commands
// that read the stats and the commands whose count did not change.
func Delta(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for name, n := range after {
		if name == "info" {
			continue
		}
		if diff := n - before[name]; diff != 0 {
			d[name] = diff
		}
	}
	return d
}

// Total returns the sum of the counts in stats.
func Total(stats map[string]int64) int64 {
	var n int64
	for _, v := range stats {
		n += v
	}
	return n
}
