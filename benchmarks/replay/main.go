// Command replay replays the incident that floodgate exists for, in
// simulated time, through five ways of enforcing one per-tenant limit across
// several processes, and prints what each costs in Redis commands and how
// well it holds the limit.
//
// The workload: 203 requests/s over 100 tenants (Zipf s = 1.1, fixed seed),
// a limit of 120/minute and 10,000/day per tenant, requests spread over
// -procs processes that share one Redis. Every strategy is fed the identical
// request sequence, with a simulated clock advanced per request:
//
//  1. naive: per request, INCR the tenant's minute and day keys, EXPIRE
//     each when the INCR created it (2 to 4 commands per request);
//  2. periodic sync: the hasty fix, reproduced with its bugs as a
//     baseline: each process counts in memory, enforces the limit alone,
//     and every 30 s pushes its whole local counts with INCRBY;
//  3. floodgate's Redis store (store/redis): one script per decision;
//  4. floodgate's hybrid store, relaxed, flushed every simulated second;
//  5. floodgate's hybrid store, strict (quota leases), flushed likewise.
//
// Decisions are judged against an exact model of the limit. The Redis is an
// embedded miniredis unless -redis or -cluster names a real one; then the
// server's INFO commandstats delta is printed beside the client-side count.
//
// Usage:
//
//	go run ./benchmarks/replay [-procs 3] [-hours 3] [-redis host:port | -cluster a,b,c] [-svg out.svg]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "replay:", strings.TrimPrefix(err.Error(), "replay: "))
	}
	os.Exit(exitCode(err))
}

// exitCode returns the exit status for run's error: 0 for none and for -h
// or -help (flag.ErrHelp: the usage was asked for, and printed, as the flag
// package's own ExitOnError handling does), 1 for any other error.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// Config is everything a replay run takes from its flags.
type Config struct {
	Workload Workload
	Policy   Policy
	Price    float64
	Redis    string
	Cluster  string
	SVG      string
	Interval time.Duration
	Only     string
	Markdown bool
	Progress bool
	Full     bool
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	c := Config{Workload: incidentWorkload(), Policy: incidentPolicy()}
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hours := fs.Float64("hours", c.Workload.Duration.Hours(),
		fmt.Sprintf("simulated `hours` to replay, above 0 and at most %d", maxHours))
	fs.IntVar(&c.Workload.Procs, "procs", c.Workload.Procs,
		fmt.Sprintf("number of processes sharing the limit, 1 to %d", maxProcs))
	fs.IntVar(&c.Workload.Tenants, "tenants", c.Workload.Tenants,
		"number of tenants, 1 to "+groupInt(maxTenants)+"; -procs × -tenants at most "+groupInt(maxProcTenants))
	fs.Float64Var(&c.Workload.Rate, "rate", c.Workload.Rate,
		"requests per simulated second, above 0 and at most "+groupInt(maxRate)+"; -rate × -hours × 3600 at most "+groupInt(maxRequests)+" requests")
	fs.Float64Var(&c.Workload.ZipfS, "zipf", c.Workload.ZipfS,
		fmt.Sprintf("Zipf exponent of tenant popularity, above 1 and at most %d", maxZipfS))
	fs.Uint64Var(&c.Workload.Seed, "seed", c.Workload.Seed, "random seed of the workload")
	fs.Int64Var(&c.Policy.PerMinute, "per-minute", c.Policy.PerMinute, "limit per tenant per minute")
	fs.Int64Var(&c.Policy.PerDay, "per-day", c.Policy.PerDay, "limit per tenant per day")
	fs.Float64Var(&c.Price, "price", 0.20, "price in dollars per 10,000 Redis commands, 0 to "+groupInt(maxPrice))
	fs.StringVar(&c.Redis, "redis", "", "real Redis `host:port` (default: embedded miniredis)")
	fs.StringVar(&c.Cluster, "cluster", "", "real Redis Cluster seed `addrs`, comma-separated")
	fs.StringVar(&c.SVG, "svg", "", "write a chart of commands per simulated minute to this `file`")
	fs.DurationVar(&c.Interval, "interval", time.Second,
		fmt.Sprintf("hybrid store flush interval, in simulated time, %v to %v; -procs × -hours × 3600 s / -interval at most %s flushes",
			minInterval, maxInterval, groupInt(maxFlushes)))
	fs.StringVar(&c.Only, "only", "", "comma-separated strategies to run (default all): "+strings.Join(specKeys(), ","))
	fs.BoolVar(&c.Markdown, "markdown", false, "print the tables as Markdown")
	fs.BoolVar(&c.Progress, "progress", true, "show a progress line on stderr")
	fs.BoolVar(&c.Full, "full", false, "on the embedded miniredis, replay every strategy for all of -hours (takes minutes)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// Checked before the conversion to a Duration, which overflows (to a
	// negative duration) beyond about 2.56 million hours, and for NaN.
	if !(*hours > 0 && *hours <= maxHours) {
		return c, fmt.Errorf("-hours %v out of range: simulated hours must be above 0 and at most %d (a week)", *hours, maxHours)
	}
	c.Workload.Duration = time.Duration(*hours * float64(time.Hour))
	if err := c.Workload.Validate(); err != nil {
		return c, err
	}
	if !(c.Price >= 0 && c.Price <= maxPrice) { // NaN fails too
		return c, fmt.Errorf("-price %v out of range: dollars per 10,000 commands must be at least 0 and at most %s", c.Price, groupInt(maxPrice))
	}
	if c.Policy.PerMinute <= 0 || c.Policy.PerDay <= 0 {
		return c, errors.New("limits must be positive")
	}
	if err := validateInterval(c.Interval, c.Workload); err != nil {
		return c, err
	}
	if _, _, err := serverAddrs(c.Redis, c.Cluster); err != nil {
		return c, err
	}
	return c, nil
}

// serverAddrs returns the addresses of the real Redis that -redis or
// -cluster names, and whether it is a cluster; none for the embedded one.
// Every address must be a host:port: go-redis dials 127.0.0.1:6379 for an
// empty one, which would run the replay on a server nobody named.
func serverAddrs(redis, cluster string) (addrs []string, isCluster bool, err error) {
	switch {
	case redis != "" && cluster != "":
		return nil, false, errors.New("give -redis or -cluster, not both")
	case redis != "":
		if strings.Contains(redis, ",") {
			return nil, false, fmt.Errorf("-redis %q: one address only (host:port); for a cluster's nodes use -cluster", redis)
		}
		addrs = []string{strings.TrimSpace(redis)}
	case cluster != "":
		for _, a := range strings.Split(cluster, ",") {
			addrs = append(addrs, strings.TrimSpace(a))
		}
		isCluster = true
	default:
		return nil, false, nil
	}
	name, value := "-redis", redis
	if isCluster {
		name, value = "-cluster", cluster
	}
	for _, a := range addrs {
		if a == "" {
			return nil, false, fmt.Errorf("%s %q: empty address (want host:port, comma-separated for -cluster)", name, value)
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return nil, false, fmt.Errorf("%s %q: address %q is not host:port", name, value, a)
		}
	}
	return addrs, isCluster, nil
}

// explainRedirect adds a hint to err when it is a cluster redirection
// (MOVED or ASK) or a CROSSSLOT refusal met on a server given with -redis:
// the server is a node of a Redis Cluster, which only a cluster client
// (-cluster) follows.
func explainRedirect(err error, cluster bool) error {
	if err == nil || cluster {
		return err
	}
	why := ""
	if addr, ok := goredis.IsMovedError(err); ok {
		why = "it redirects to " + addr
	} else if addr, ok := goredis.IsAskError(err); ok {
		why = "it redirects to " + addr
	} else {
		// The typed error may have been flattened to text on its way up.
		for _, part := range strings.Split(err.Error(), ": ") {
			f := strings.Fields(part)
			switch {
			case len(f) == 3 && (f[0] == "MOVED" || f[0] == "ASK"):
				why = "it redirects to " + f[2]
			case len(f) > 0 && f[0] == "CROSSSLOT":
				why = "it refuses keys of several hash slots in one command"
			}
			if why != "" {
				break
			}
		}
	}
	if why == "" {
		return err
	}
	return fmt.Errorf("%w: the server given with -redis is a Redis Cluster node (%s); use -cluster with the cluster's nodes", err, why)
}

// Bounds of -interval. Each process of a hybrid strategy flushes once per
// interval of simulated time, and a flush costs about a round trip (half a
// millisecond on the embedded miniredis): at 1 ms, three processes would
// flush 32 million times in the default three hours. maxFlushes lets every
// -procs and -hours run at the default 1 s interval.
const (
	minInterval = 10 * time.Millisecond
	maxInterval = 24 * time.Hour
	maxFlushes  = 100_000_000 // per strategy: Procs × Duration / interval
)

// validateInterval reports whether the hybrid strategies can flush every
// interval over w in a bounded time. w must be valid.
func validateInterval(interval time.Duration, w Workload) error {
	if interval < minInterval || interval > maxInterval {
		return fmt.Errorf("-interval %v out of range: the flush interval must be at least %v and at most %v", interval, minInterval, maxInterval)
	}
	if n := float64(w.Procs) * w.Duration.Seconds() / interval.Seconds(); n > maxFlushes {
		return fmt.Errorf("-procs %d over -hours %v flushing every -interval %v is %s flushes: at most %s fit in one run (-procs × -hours × 3600 s / -interval)",
			w.Procs, w.Duration.Hours(), interval, groupInt(int64(n)), groupInt(maxFlushes))
	}
	return nil
}

// maxPrice bounds -price, in dollars per 10,000 commands: far above any
// real price, low enough for the cost column to stay readable.
const maxPrice = 1_000_000

func specKeys() []string {
	var keys []string
	for _, s := range allSpecs() {
		keys = append(keys, s.Key)
	}
	return keys
}

// allSpecs lists the strategies in table order.
func allSpecs() []StrategySpec {
	specs := []StrategySpec{
		{Key: "naive", Name: "naive INCR+EXPIRE per request", Build: newNaive, EmbeddedSpan: 30 * time.Minute},
		{Key: "periodic", Name: "periodic full-count sync, 30 s (baseline)", Build: newPeriodic},
	}
	return append(specs, floodgateSpecs()...)
}

func selectSpecs(only string) ([]StrategySpec, error) {
	all := allSpecs()
	if only == "" {
		return all, nil
	}
	var out []StrategySpec
	seen := map[string]bool{}
	for _, k := range strings.Split(only, ",") {
		k = strings.TrimSpace(k)
		if seen[k] {
			return nil, fmt.Errorf("-only %s: strategy %q given twice (each runs once)", only, k)
		}
		seen[k] = true
		found := false
		for _, s := range all {
			if s.Key == k {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown strategy %q (have %s)", k, strings.Join(specKeys(), ","))
		}
	}
	return out, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	specs, err := selectSpecs(cfg.Only)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// After the first interrupt, the replay stops and deletes its keys
	// from a real server; a second one kills the process as usual.
	context.AfterFunc(ctx, stop)

	opts := Options{Workload: cfg.Workload, Policy: cfg.Policy, Interval: cfg.Interval, Specs: specs, Full: cfg.Full}
	addrs, cluster, err := serverAddrs(cfg.Redis, cfg.Cluster)
	if err != nil {
		return err
	}
	if addrs != nil {
		srv, err := newRemote(ctx, addrs, cluster)
		if err != nil {
			return err
		}
		defer srv.Close()
		opts.Shared = srv
	}
	if opts.Shared == nil && os.Getenv("GOMAXPROCS") == "" {
		// A client and its embedded miniredis take turns, one command at a
		// time: on one P each hands over to the other without a wake-up
		// across CPUs, which makes the replay about 1.5× faster.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	opts.Warn = stderr
	// The progress line rewrites itself with terminal escapes: only on a
	// terminal. Elsewhere (a file, a pipe) each strategy gets one plain
	// line when it is done.
	live := cfg.Progress && isTerminal(stderr)
	if live {
		opts.OnProgress = progressLine(stderr)
		opts.Warn = clearLine{stderr}
	} else if cfg.Progress {
		opts.OnDone = func(r *Result) {
			fmt.Fprintf(stderr, "replay: %s done: %s requests over %s simulated in %.1f s\n",
				r.Spec.Key, groupInt(r.Requests), fmtSpan(r.Duration), r.Wall.Seconds())
		}
	}
	start := time.Now()
	results, err := Replay(ctx, opts)
	err = explainRedirect(err, cluster)
	if live {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	return report(stdout, cfg, results, opts, time.Since(start))
}

// isTerminal reports whether w is a terminal (a character device, as
// /dev/tty is; /dev/null is one too, harmlessly).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// clearLine writes to a terminal that shows a progress line: it clears the
// line first, so that what it writes does not run on from the progress.
type clearLine struct{ w io.Writer }

func (c clearLine) Write(p []byte) (int, error) {
	if _, err := io.WriteString(c.w, "\r\033[K"); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// progressLine returns a progress printer that overwrites one line.
func progressLine(w io.Writer) func(names []string, done, expected []int64, elapsed time.Duration) {
	return func(names []string, done, expected []int64, elapsed time.Duration) {
		var b strings.Builder
		b.WriteString("\r\033[Kreplay")
		for i, n := range names {
			pct := 100 * float64(done[i]) / float64(max(expected[i], 1))
			fmt.Fprintf(&b, "  %s %3.0f%%", n, min(pct, 100))
		}
		fmt.Fprintf(&b, "  (%.0f s)", elapsed.Seconds())
		fmt.Fprint(w, b.String())
	}
}

// Options is one replay: the workload, the strategies, and where their
// Redis is.
type Options struct {
	Workload Workload
	Policy   Policy
	Interval time.Duration
	Specs    []StrategySpec
	// Shared is a real server the strategies take turns on; nil gives each
	// strategy its own embedded miniredis (still one strategy at a time).
	Shared Server
	// Full replays every strategy for the whole workload even on the
	// embedded server (see StrategySpec.EmbeddedSpan).
	Full bool
	// OnProgress, if set, is called a few times a second with the requests
	// each strategy has replayed and is expected to replay.
	OnProgress func(names []string, done, expected []int64, elapsed time.Duration)
	// OnDone, if set, is called with each strategy's result when it has
	// been replayed.
	OnDone func(r *Result)
	// Warn, if set, receives warnings: keys a failed or interrupted
	// strategy could not delete from a shared server.
	Warn io.Writer
}

// keyCleaner is a Server that outlives the strategies run on it (a real
// Redis), whose keys a run deletes when it is done.
type keyCleaner interface {
	deletePrefix(ctx context.Context, prefix string) error
}

// cleanupTimeout bounds the deletion of one strategy's keys.
const cleanupTimeout = 15 * time.Second

// cleanUp deletes the keys under prefix from c, with a context of its own:
// the run's context may be cancelled already (an interrupt), and the keys
// must go all the same.
func cleanUp(ctx context.Context, c keyCleaner, prefix string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return c.deletePrefix(ctx, prefix)
}

// workloadFor returns the workload strategy spec replays under o.
func (o Options) workloadFor(spec StrategySpec) Workload {
	w := o.Workload
	if o.Shared == nil && !o.Full && spec.EmbeddedSpan > 0 {
		w.Duration = min(w.Duration, spec.EmbeddedSpan)
	}
	return w
}

// Replay runs every strategy of o over the same workload and returns their
// results in the order of o.Specs.
func Replay(ctx context.Context, o Options) ([]*Result, error) {
	runID := fmt.Sprintf("fg-replay:%d:%d", os.Getpid(), time.Now().UnixNano())
	results := make([]*Result, len(o.Specs))
	progs := make([]*Progress, len(o.Specs))
	names := make([]string, len(o.Specs))
	expected := make([]int64, len(o.Specs))
	for i, s := range o.Specs {
		progs[i], names[i], expected[i] = new(Progress), s.Key, o.workloadFor(s).Expected()
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	if o.OnProgress != nil {
		start := time.Now()
		wg.Go(func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			counts := make([]int64, len(progs))
			for {
				select {
				case <-done:
					return
				case <-t.C:
					for i, p := range progs {
						counts[i] = p.done.Load()
					}
					o.OnProgress(names, counts, expected, time.Since(start))
				}
			}
		})
	}
	defer func() {
		close(done)
		wg.Wait()
	}()

	one := func(i int, srv Server) error {
		prefix := runID + ":" + o.Specs[i].Key
		r, err := Run(ctx, o.workloadFor(o.Specs[i]), o.Policy, o.Specs[i], srv, prefix, o.Interval, progs[i])
		// A shared server keeps what the strategy wrote, whether it
		// finished, failed or was interrupted: delete it in every case.
		if c, ok := srv.(keyCleaner); ok {
			if cerr := cleanUp(ctx, c, prefix); cerr != nil {
				if err == nil {
					return cerr // names the prefix
				}
				// The strategy's own error is the one to return.
				if o.Warn != nil {
					fmt.Fprintf(o.Warn, "replay: %s: keys left on the server: %v\n", o.Specs[i].Key, cerr)
				}
			}
		}
		if err != nil {
			return err
		}
		results[i] = r
		if o.OnDone != nil {
			o.OnDone(r)
		}
		return nil
	}
	// One strategy at a time: INFO commandstats is global on a shared
	// server, and on the embedded one a client and its miniredis take turns
	// on the CPU, so side-by-side runs only slow each other down and blur
	// the latencies.
	for i := range o.Specs {
		srv := o.Shared
		if srv == nil {
			e, err := newEmbedded()
			if err != nil {
				return nil, err
			}
			srv = e
		}
		err := one(i, srv)
		if o.Shared == nil {
			_ = srv.Close()
		}
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

func report(w io.Writer, cfg Config, results []*Result, o Options, wall time.Duration) error {
	wl := cfg.Workload
	server := "embedded miniredis v2.40.0 (one per strategy)"
	if o.Shared != nil {
		server = o.Shared.Describe()
	}
	fmt.Fprintf(w, "Incident replay: %.0f requests/s over %d tenants (Zipf s=%.2f, seed %d), %d/minute + %d/day per tenant,\n",
		wl.Rate, wl.Tenants, wl.ZipfS, wl.Seed, cfg.Policy.PerMinute, cfg.Policy.PerDay)
	fmt.Fprintf(w, "%d processes, %s simulated, hybrid flush every %v; Redis: %s; replayed in %.1f s (%d CPUs, GOMAXPROCS %d).\n\n",
		wl.Procs, fmtSpan(wl.Duration), cfg.Interval, server, wall.Seconds(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	write := func(t *Table) error {
		if cfg.Markdown {
			return t.WriteMarkdown(w)
		}
		return t.WriteText(w)
	}
	if err := write(SummaryTable(results, cfg.Price)); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nAccuracy against the exact model (admitted counts per tenant-minute and tenant-day across all processes):")
	if err := write(AccuracyTable(results)); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nRedis commands, client-sent (go-redis hook) against server-executed ("+serverCountSource(o)+"):")
	if err := write(CountTable(results)); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.Extra != "" {
			fmt.Fprintf(w, "- %s: %s.\n", r.Spec.Name, r.Extra)
		}
	}
	for _, r := range results {
		if r.Duration < wl.Duration {
			fmt.Fprintf(w, "- %s: replayed over the first %s only (-full replays it all, in minutes): the embedded miniredis is far slower than Redis (a goroutine hand-off per command, a fresh Lua interpreter per script); per-hour figures are measured over that span.\n",
				r.Spec.Name, fmtSpan(r.Duration))
		}
	}
	fmt.Fprintln(w, "- Decision latency is the wall-clock time of each decision call in this process, background syncs excluded.")
	if o.Shared == nil {
		fmt.Fprintln(w, "- On the embedded miniredis, latencies measure an in-process emulator with no network; run with -redis for real ones.")
	}
	if cfg.SVG != "" {
		f, err := os.Create(cfg.SVG)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("Redis commands per simulated minute: %.0f req/s, %d tenants, %d processes", wl.Rate, wl.Tenants, wl.Procs)
		if err := WriteSVG(f, results, title); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(w, "- Chart written to %s.\n", cfg.SVG)
	}
	return nil
}

func serverCountSource(o Options) string {
	if o.Shared == nil {
		return "miniredis command hook"
	}
	return "INFO commandstats delta"
}
