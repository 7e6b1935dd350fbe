package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
)

// smallWorkload is the incident's traffic over a few simulated minutes.
func smallWorkload(minutes int) Workload {
	w := incidentWorkload()
	w.Duration = time.Duration(minutes) * time.Minute
	return w
}

func TestGeneratorDeterministicAndShaped(t *testing.T) {
	w := smallWorkload(10)
	a, b := NewGenerator(w), NewGenerator(w)
	perTenant := make([]int, w.Tenants)
	perProc := make([]int, w.Procs)
	var n int
	var last time.Duration
	for {
		ra, oka := a.Next()
		rb, okb := b.Next()
		if ra != rb || oka != okb {
			t.Fatalf("request %d: generators with one seed differ: %+v/%v vs %+v/%v", n, ra, oka, rb, okb)
		}
		if !oka {
			break
		}
		if ra.At < last || ra.At >= w.Duration {
			t.Fatalf("request %d at %v: not in time order within [0, %v) after %v", n, ra.At, w.Duration, last)
		}
		last = ra.At
		perTenant[ra.Tenant]++
		perProc[ra.Proc]++
		n++
	}
	want := w.Expected()
	if diff := float64(int64(n)-want) / float64(want); diff < -0.02 || diff > 0.02 {
		t.Errorf("%d requests in %v; want %d ± 2 %%", n, w.Duration, want)
	}
	// Zipf s = 1.1 over 100 tenants: the busiest tenant gets about a fifth
	// of the traffic, and popularity falls with rank.
	if share := float64(perTenant[0]) / float64(n); share < 0.15 || share > 0.30 {
		t.Errorf("busiest tenant has %.3f of the requests; want about 0.2", share)
	}
	if !(perTenant[0] > perTenant[1] && perTenant[1] > perTenant[9] && perTenant[9] > perTenant[99]) {
		t.Errorf("tenant popularity not decreasing: %d, %d, %d, %d", perTenant[0], perTenant[1], perTenant[9], perTenant[99])
	}
	for p, c := range perProc {
		if c < n/w.Procs*9/10 {
			t.Errorf("process %d got %d of %d requests; want about a third", p, c, n)
		}
	}
	w2 := w
	w2.Seed++
	if r1, _ := NewGenerator(w).Next(); func() bool { r2, _ := NewGenerator(w2).Next(); return r1 == r2 }() {
		t.Errorf("different seeds gave the same first request %+v", r1)
	}
}

func TestWorkloadValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Workload)
		want string // in the error; "" for valid
	}{
		{"rate", func(w *Workload) { w.Rate = 0 }, "-rate"},
		{"rate NaN", func(w *Workload) { w.Rate = math.NaN() }, "-rate"},
		{"rate Inf", func(w *Workload) { w.Rate = math.Inf(1) }, "-rate"},
		{"rate 1e300", func(w *Workload) { w.Rate = 1e300 }, "-rate"},
		{"rate above max", func(w *Workload) { w.Rate = maxRate + 1 }, "-rate"},
		{"rate max", func(w *Workload) { w.Rate = maxRate; w.Duration = time.Hour }, ""},
		{"tenants", func(w *Workload) { w.Tenants = 0 }, "-tenants"},
		{"tenants above max", func(w *Workload) { w.Tenants = maxTenants + 1 }, "-tenants"},
		{"tenants max", func(w *Workload) { w.Tenants = maxTenants }, ""},
		{"zipf", func(w *Workload) { w.ZipfS = 1 }, "-zipf"},
		{"zipf Inf", func(w *Workload) { w.ZipfS = math.Inf(1) }, "-zipf"},
		{"procs", func(w *Workload) { w.Procs = 0 }, "-procs"},
		{"procs above max", func(w *Workload) { w.Procs = maxProcs + 1 }, "-procs"},
		{"procs max", func(w *Workload) { w.Procs = maxProcs }, ""},
		{"duration", func(w *Workload) { w.Duration = 0 }, "-hours"},
		{"duration negative", func(w *Workload) { w.Duration = -time.Hour }, "-hours"},
		{"duration above max", func(w *Workload) { w.Duration = maxHours*time.Hour + 1 }, "-hours"},
		{"duration max", func(w *Workload) { w.Duration = maxHours * time.Hour }, ""},
		{"requests", func(w *Workload) { w.Rate, w.Duration = maxRate, 3*time.Hour }, "1,000,000,000"},
		{"procs × tenants", func(w *Workload) { w.Procs, w.Tenants = maxProcs, maxTenants }, "-procs 100 × -tenants 1000000"},
		{"procs × tenants max", func(w *Workload) { w.Procs, w.Tenants = 10, maxTenants }, ""},
	} {
		w := incidentWorkload()
		tc.edit(&w)
		err := w.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v; want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Validate() = %v; want an error with %q", tc.name, err, tc.want)
		}
	}
	if err := incidentWorkload().Validate(); err != nil {
		t.Errorf("incident workload: Validate() = %v", err)
	}
}

// TestParseFlagsBounds checks that each flag's out-of-range values are
// refused with an error naming the flag, and that the values at the bounds
// pass. Without the bounds, most of these runs would never finish.
func TestParseFlagsBounds(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for valid
	}{
		{[]string{"-rate", "Inf"}, "-rate +Inf out of range"},
		{[]string{"-rate", "NaN"}, "-rate NaN out of range"},
		{[]string{"-rate", "1e300"}, "-rate 1e+300 out of range"},
		{[]string{"-rate", "-5"}, "-rate -5 out of range"},
		{[]string{"-rate", "100000", "-hours", "2"}, ""},
		{[]string{"-rate", "100000", "-hours", "3"}, "at most 1,000,000,000 fit in one run"},
		{[]string{"-procs", "1000000"}, "-procs 1000000 out of range: want 1 to 100"},
		{[]string{"-procs", "0"}, "-procs 0 out of range"},
		{[]string{"-procs", "100"}, ""},
		{[]string{"-tenants", "100000000"}, "-tenants 100000000 out of range: want 1 to 1,000,000"},
		{[]string{"-tenants", "1000000", "-procs", "10"}, ""},
		{[]string{"-tenants", "1000000", "-procs", "11"}, "-procs 11 × -tenants 1000000"},
		{[]string{"-hours", "1e6"}, "-hours 1e+06 out of range"},
		{[]string{"-hours", "1e7"}, "-hours 1e+07 out of range"},
		{[]string{"-hours", "Inf"}, "-hours +Inf out of range"},
		{[]string{"-hours", "NaN"}, "-hours NaN out of range"},
		{[]string{"-hours", "0"}, "-hours 0 out of range"},
		{[]string{"-hours", "-1"}, "-hours -1 out of range"},
		{[]string{"-hours", "1e-30"}, "-hours: simulated duration 0s out of range"},
		{[]string{"-hours", "168"}, ""},
		{[]string{"-zipf", "Inf"}, "-zipf +Inf out of range"},
		{[]string{"-zipf", "1"}, "-zipf 1 out of range"},
		{[]string{"-interval", "1ns"}, "-interval 1ns out of range: the flush interval must be at least 10ms"},
		{[]string{"-interval", "1ms"}, "-interval 1ms out of range"},
		{[]string{"-interval", "0"}, "-interval 0s out of range"},
		{[]string{"-interval", "-1s"}, "-interval -1s out of range"},
		{[]string{"-interval", "25h"}, "-interval 25h0m0s out of range"},
		{[]string{"-interval", "10ms"}, ""},
		{[]string{"-interval", "24h"}, ""},
		{[]string{"-interval", "10ms", "-procs", "100"}, "is 108,000,000 flushes: at most 100,000,000"},
		{[]string{"-procs", "100", "-hours", "168"}, ""},
		{[]string{"-price", "-1"}, "-price -1 out of range"},
		{[]string{"-price", "NaN"}, "-price NaN out of range"},
		{[]string{"-price", "Inf"}, "-price +Inf out of range"},
		{[]string{"-price", "1e300"}, "-price 1e+300 out of range"},
		{[]string{"-price", "0"}, ""},
		{[]string{"-price", "1000000"}, ""},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("parseFlags(%q) = %v; want nil", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("parseFlags(%q) = %v; want an error with %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Errorf("default flags: %v", err)
	}
}

func TestExactModel(t *testing.T) {
	p := Policy{PerMinute: 2, PerDay: 3}
	steps := []struct {
		tenant  int
		at      time.Duration
		allowed bool
		over    int64 // cumulative
		wrong   int64 // cumulative
	}{
		{0, 0, false, 0, 1},                         // the exact limiter admits it: wrongly denied
		{0, time.Second, true, 0, 1},                // exact: 2nd in the minute
		{0, 2 * time.Second, true, 0, 1},            // exact denies (2/minute), own count 2: not over
		{0, 3 * time.Second, true, 1, 1},            // own count would be 3: over
		{1, 3 * time.Second, false, 1, 2},           // other tenant, exact admits: wrong
		{0, time.Minute, true, 2, 2},                // own day count would be 4 > 3: over; exact admits (day 3/3)
		{0, time.Minute + time.Second, false, 2, 2}, // exact denies: the day is spent
		{1, time.Minute, true, 2, 2},                // tenant 1 untouched by tenant 0
		{0, 24 * time.Hour, false, 2, 3},            // new day: exact admits, strategy denies
		{0, 24*time.Hour + time.Second, true, 2, 3},
	}
	e := NewExact(p, 2)
	for i, s := range steps {
		e.Record(s.tenant, replayStart.Add(s.at), s.allowed)
		if e.OverLimit != s.over || e.WronglyDenied != s.wrong {
			t.Fatalf("step %d: over, wrongly denied = %d, %d; want %d, %d", i, e.OverLimit, e.WronglyDenied, s.over, s.wrong)
		}
	}
	if e.Admitted != 6 || e.Denied != 4 || e.MaxMinute != 3 || e.IdealAdmitted != 7 {
		t.Errorf("admitted, denied, max per minute, exact admitted = %d, %d, %d, %d; want 6, 4, 3, 7",
			e.Admitted, e.Denied, e.MaxMinute, e.IdealAdmitted)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile(0.5) = %v; want 0", got)
	}
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}, {0, time.Microsecond}} {
		got := h.Quantile(tc.q)
		if got > tc.want || float64(got) < float64(tc.want)*0.985 {
			t.Errorf("Quantile(%v) = %v; want within 1.5 %% below %v", tc.q, got, tc.want)
		}
	}
	for ns := int64(0); ns < 1<<20; ns = ns*5/4 + 1 {
		if b := bucketOf(ns); bucketLow(b) > ns || (b+1 < 64*64 && bucketLow(b+1) <= ns) {
			t.Fatalf("bucketOf(%d) = %d covering [%d, %d)", ns, b, bucketLow(b), bucketLow(b+1))
		}
	}
}

// replaySmall runs the given strategies over a few simulated minutes on
// embedded miniredis.
func replaySmall(t *testing.T, minutes int, keys ...string) map[string]*Result {
	t.Helper()
	return replayTenants(t, minutes, 100, keys...)
}

// replayTenants is replaySmall with tenants tenants.
func replayTenants(t *testing.T, minutes, tenants int, keys ...string) map[string]*Result {
	t.Helper()
	w := smallWorkload(minutes)
	w.Tenants = tenants
	specs, err := selectSpecs(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	results, err := Replay(context.Background(), Options{
		Workload: w, Policy: incidentPolicy(), Interval: time.Second, Specs: specs, Full: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Result{}
	for _, r := range results {
		out[r.Spec.Key] = r
		if r.Requests == 0 || r.Exact.Admitted+r.Exact.Denied != r.Requests {
			t.Errorf("%s: %d requests, %d admitted + %d denied", r.Spec.Key, r.Requests, r.Exact.Admitted, r.Exact.Denied)
		}
		if len(r.PerMinute) != minutes {
			t.Errorf("%s: %d minutes in the chart series; want %d", r.Spec.Key, len(r.PerMinute), minutes)
		}
		// The client-side count and the server's agree on what was sent.
		if s := r.ServerSent(); s != r.Commands {
			t.Errorf("%s: server executed %d of the commands sent, hook counted %d", r.Spec.Key, s, r.Commands)
		}
	}
	return out
}

func TestReplayBaselines(t *testing.T) {
	res := replaySmall(t, 5, "naive", "periodic")
	all := []*Result{res["naive"], res["periodic"]}

	n := res["naive"]
	if c := n.CommandsPerRequest(); c < 2 || c > 4 {
		t.Errorf("naive: %.3f commands/request; want 2 to 4", c)
	}
	if n.Commands != n.RoundTrips {
		t.Errorf("naive: %d commands in %d round trips; want one each", n.Commands, n.RoundTrips)
	}
	if n.Exact.OverLimit != 0 {
		t.Errorf("naive: %d over the limit; want 0 (INCR is atomic)", n.Exact.OverLimit)
	}
	// Denied requests are charged to the day counter too, so the busiest
	// tenants are denied for the day long before they reach it.
	if n.Exact.WronglyDenied == 0 {
		t.Error("naive: no request wrongly denied; want the day counter's charging of denied requests to show")
	}

	p := res["periodic"]
	if p.Exact.OverLimit == 0 || p.Exact.MaxMinute <= 120 {
		t.Errorf("periodic: over the limit %d, most in a tenant-minute %d; want over-admission (each process enforces alone)",
			p.Exact.OverLimit, p.Exact.MaxMinute)
	}
	if p.Exact.MaxMinute > 3*120 {
		t.Errorf("periodic: %d admitted in a tenant-minute; three processes admit at most 360", p.Exact.MaxMinute)
	}
	if c := p.CommandsPerRequest(); c >= n.CommandsPerRequest()/10 {
		t.Errorf("periodic: %.4f commands/request; want far fewer than naive's %.2f", c, n.CommandsPerRequest())
	}
	if !strings.Contains(p.Extra, "×") {
		t.Errorf("periodic: remark %q lacks the double-count ratio", p.Extra)
	}

	var text, md, svg bytes.Buffer
	if err := SummaryTable(all, 0.2).WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"commands/hour", "naive INCR+EXPIRE", "periodic full-count sync", "$"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary table lacks %q:\n%s", want, text.String())
		}
	}
	if err := CountTable(all).WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(md.String(), "\n"); lines != 4 {
		t.Errorf("markdown count table has %d lines; want 4:\n%s", lines, md.String())
	}
	if err := WriteSVG(&svg, all, "test <chart>"); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg.Bytes(), len(all))
}

// checkSVG fails unless b is well-formed XML with one polyline per series.
func checkSVG(t *testing.T, b []byte, series int) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	lines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != series {
		t.Errorf("SVG has %d polylines; want %d", lines, series)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{groupInt(0), "0"},
		{groupInt(999), "999"},
		{groupInt(1000), "1,000"},
		{groupInt(-1234567), "-1,234,567"},
		{groupFloat(1234.567), "1,234.57"},
		{groupFloat(0.999), "1.00"},
		{fmtDuration(250), "250 ns"},
		{fmtDuration(1500 * time.Nanosecond), "1.5 µs"},
		{fmtRatio(0.0148), "0.0148"},
		{fmtRatio(2.014), "2.01"},
		{fmtPercent(1000, 1005), "0.50 %"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q; want %q", tc.got, tc.want)
		}
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-hours", "0"},
		{"-procs", "0"},
		{"-only", "nosuch"},
		{"-redis", "a:1", "-cluster", "b:2"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("run(%q) = nil; want an error", args)
		}
	}
	var out, errOut bytes.Buffer
	err := run([]string{"-hours", "0.02", "-tenants", "10", "-only", "naive,periodic", "-progress=false", "-markdown"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"| strategy |", "naive INCR+EXPIRE", "10 tenants"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSelectSpecs(t *testing.T) {
	for _, tc := range []struct {
		only    string
		want    string // keys, comma-separated; "" for an error
		errWant string
	}{
		{"", "naive,periodic,redis,relaxed,strict", ""},
		{"strict,naive", "strict,naive", ""},
		{" naive , periodic", "naive,periodic", ""},
		{"naive,naive", "", `"naive" given twice`},
		{"naive,periodic, naive", "", `"naive" given twice`},
		{"nosuch", "", `unknown strategy "nosuch"`},
		{"naive,", "", `unknown strategy ""`},
	} {
		specs, err := selectSpecs(tc.only)
		if tc.errWant != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("selectSpecs(%q) = %d specs, error %v; want an error with %q", tc.only, len(specs), err, tc.errWant)
			}
			continue
		}
		if err != nil {
			t.Errorf("selectSpecs(%q): %v", tc.only, err)
			continue
		}
		var keys []string
		for _, s := range specs {
			keys = append(keys, s.Key)
		}
		if got := strings.Join(keys, ","); got != tc.want {
			t.Errorf("selectSpecs(%q) = %s; want %s", tc.only, got, tc.want)
		}
	}
}

func TestServerAddrs(t *testing.T) {
	for _, tc := range []struct {
		redis, cluster string
		want           string // addresses, comma-separated, then "/cluster" for a cluster
		errWant        string
	}{
		{"", "", "", ""},
		{"127.0.0.1:6379", "", "127.0.0.1:6379", ""},
		{" [::1]:6379 ", "", "[::1]:6379", ""},
		{"", "a:7000,b:7001, c:7002", "a:7000,b:7001,c:7002/cluster", ""},
		{"", "a:7000", "a:7000/cluster", ""},
		{"", ",", "", `-cluster ",": empty address`},
		{"", "a:7000,", "", `-cluster "a:7000,": empty address`},
		{"", "a:7000, ,b:7001", "", "empty address"},
		{" ", "", "", `-redis " ": empty address`},
		{"a:1,b:2", "", "", "one address only"},
		{"localhost", "", "", `address "localhost" is not host:port`},
		{"", "a:7000,b", "", `address "b" is not host:port`},
		{"a:", "", "", `address "a:" is not host:port`},
		{"a:1", "b:2", "", "not both"},
	} {
		addrs, cluster, err := serverAddrs(tc.redis, tc.cluster)
		if tc.errWant != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("serverAddrs(%q, %q) = %q, %v, %v; want an error with %q", tc.redis, tc.cluster, addrs, cluster, err, tc.errWant)
			}
			// parseFlags refuses the same values.
			args := []string{"-redis", tc.redis, "-cluster", tc.cluster}
			if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("parseFlags(%q) = %v; want an error with %q", args, err, tc.errWant)
			}
			continue
		}
		got := strings.Join(addrs, ",")
		if cluster {
			got += "/cluster"
		}
		if err != nil || got != tc.want {
			t.Errorf("serverAddrs(%q, %q) = %q, %v; want %q", tc.redis, tc.cluster, got, err, tc.want)
		}
	}
}

func TestExplainRedirect(t *testing.T) {
	moved := errors.New("MOVED 3999 127.0.0.1:7001")
	for _, tc := range []struct {
		name    string
		err     error
		cluster bool
		want    string // in the error; "" for unchanged
	}{
		{"moved, wrapped", fmt.Errorf("naive: request at 0s: %w", moved), false, "is a Redis Cluster node (it redirects to 127.0.0.1:7001); use -cluster"},
		{"moved, as text", fmt.Errorf("relaxed: process 0 at 1s: %v", moved), false, "use -cluster"},
		{"moved, bare", moved, false, "use -cluster"},
		{"ask", fmt.Errorf("strict: %w", errors.New("ASK 3999 127.0.0.1:7002")), false, "redirects to 127.0.0.1:7002"},
		{"crossslot", errors.New("relaxed: process 0 at 1s: hybrid: flush: redis: store: backend unavailable: CROSSSLOT Keys in request don't hash to the same slot"), false, "(it refuses keys of several hash slots in one command); use -cluster"},
		{"on a cluster", fmt.Errorf("naive: %w", moved), true, ""},
		{"other error", errors.New("naive: request at 0s: connection refused"), false, ""},
		{"a key named MOVED", errors.New("WRONGTYPE MOVED x y"), false, ""},
		{"nil", nil, false, ""},
	} {
		got := explainRedirect(tc.err, tc.cluster)
		if tc.want == "" {
			if got != tc.err {
				t.Errorf("%s: explainRedirect(%v) = %v; want it unchanged", tc.name, tc.err, got)
			}
			continue
		}
		if got == nil || !strings.Contains(got.Error(), tc.want) || !strings.HasPrefix(got.Error(), tc.err.Error()) {
			t.Errorf("%s: explainRedirect(%v) = %v; want the error followed by %q", tc.name, tc.err, got, tc.want)
		}
	}
}

// cleanedEmbedded is an embedded miniredis that, like a real server,
// keeps its keys across strategies and has them deleted by the replay.
// Its deletions fail with deleteErr when that is set.
type cleanedEmbedded struct {
	*embedded
	admin     goredis.UniversalClient
	deleteErr error
}

func (c *cleanedEmbedded) deletePrefix(ctx context.Context, prefix string) error {
	if c.deleteErr != nil {
		return c.deleteErr
	}
	return redisstats.DeletePrefix(ctx, c.admin, prefix)
}

// keyWriter is a strategy that writes keys under its prefix, and at its
// 100th request does what its test case says: fail, or cancel the replay
// (an interrupt).
type keyWriter struct {
	env    *Env
	c      RedisClient
	n      int
	action func() error
}

func (s *keyWriter) Allow(ctx context.Context, _, tenant int, _ time.Time) (bool, error) {
	s.n++
	if s.n == 100 && s.action != nil {
		return false, s.action()
	}
	if s.n > 100 && s.action != nil { // interrupted: Run sees it every 4096 requests
		return true, nil
	}
	return true, s.c.Incr(ctx, s.env.Prefix+":t"+strconv.Itoa(tenant)).Err()
}

func (s *keyWriter) Every() time.Duration                       { return 0 }
func (s *keyWriter) Tick(context.Context, int, time.Time) error { return nil }
func (s *keyWriter) Close() error                               { return s.c.Close() }

// TestReplayDeletesKeys checks that a strategy's keys are deleted from a
// shared server when it succeeds, fails or is interrupted, and that a
// failed deletion is reported.
func TestReplayDeletesKeys(t *testing.T) {
	for _, tc := range []struct {
		name      string
		action    func(cancel context.CancelFunc) error
		deleteErr error
		wantErr   string
		wantWarn  string
	}{
		{"succeeds", nil, nil, "", ""},
		{"fails", func(context.CancelFunc) error { return errors.New("boom") }, nil, "boom", ""},
		{"interrupted", func(cancel context.CancelFunc) error { cancel(); return nil }, nil, "context canceled", ""},
		{"succeeds, cleanup fails", nil, errors.New("no route"), "no route", ""},
		{"fails, cleanup fails", func(context.CancelFunc) error { return errors.New("boom") }, errors.New("no route"),
			"boom", "replay: keys: keys left on the server: no route\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := newEmbedded()
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			srv := &cleanedEmbedded{embedded: e, admin: e.NewClient(new(redisstats.Counter)), deleteErr: tc.deleteErr}
			defer srv.admin.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			spec := StrategySpec{Key: "keys", Name: "key writer", Build: func(env *Env) (Strategy, error) {
				s := &keyWriter{env: env, c: env.NewClient()}
				if tc.action != nil {
					s.action = func() error { return tc.action(cancel) }
				}
				return s, nil
			}}
			var warn bytes.Buffer
			_, err = Replay(ctx, Options{Workload: smallWorkload(1), Policy: incidentPolicy(), Interval: time.Second,
				Specs: []StrategySpec{spec}, Shared: srv, Warn: &warn})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Replay: %v; want error %q", err, tc.wantErr)
			}
			if warn.String() != tc.wantWarn {
				t.Errorf("warnings %q; want %q", warn.String(), tc.wantWarn)
			}
			if tc.deleteErr != nil {
				return
			}
			if keys := e.m.Keys(); len(keys) != 0 {
				t.Errorf("%d keys left on the server: %q", len(keys), keys[:min(len(keys), 5)])
			}
		})
	}
}

// TestProgressOnlyOnTerminal checks that the progress line, with its
// terminal escapes, is written only to a terminal, and that other stderrs
// get one plain line per strategy.
func TestProgressOnlyOnTerminal(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, tc := range []struct {
		name     string
		w        io.Writer
		terminal bool
	}{
		{"buffer", new(bytes.Buffer), false},
		{"file", file, false},
		{"character device", devNull, true},
	} {
		if got := isTerminal(tc.w); got != tc.terminal {
			t.Errorf("%s: isTerminal = %v; want %v", tc.name, got, tc.terminal)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"progress", nil, "replay: naive done: "},
		{"no progress", []string{"-progress=false"}, ""},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"-hours", "0.01", "-only", "naive,periodic"}, tc.args...)
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%s: run: %v", tc.name, err)
		}
		got := errOut.String()
		if strings.ContainsAny(got, "\r\033") {
			t.Errorf("%s: terminal escapes on a stderr that is no terminal: %q", tc.name, got)
		}
		if tc.want == "" {
			if got != "" {
				t.Errorf("%s: stderr %q; want nothing", tc.name, got)
			}
			continue
		}
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], tc.want) || !strings.HasPrefix(lines[1], "replay: periodic done: ") {
			t.Errorf("%s: stderr %q; want one line per strategy, starting %q", tc.name, got, tc.want)
		}
	}
}

func TestPeriodicRemark(t *testing.T) {
	for _, tc := range []struct {
		redisTotal, admitted int64
		want                 string
	}{
		// The default run's figures.
		{226469810, 1108013, "Redis's day counters say 226469810 requests; the processes admitted 1108013 (204.4×: whole counts pushed every sync)"},
		// -only periodic -hours 0.01: only one process had synced.
		{1544, 5259, "Redis's day counters say 1544 requests; the processes admitted 5259 (fewer: what each process admitted since its last sync, every 30 s, was not pushed yet)"},
		{3, 5259, "Redis's day counters say 3 requests; the processes admitted 5259 (fewer: what each process admitted since its last sync, every 30 s, was not pushed yet)"},
		{0, 0, "Redis's day counters say 0 requests; the processes admitted 0"},
		{500, 500, "Redis's day counters say 500 requests; the processes admitted 500"},
		{7, 0, "Redis's day counters say 7 requests; the processes admitted 0 (7.0×: whole counts pushed every sync)"},
	} {
		if got := periodicRemark(tc.redisTotal, tc.admitted); got != tc.want {
			t.Errorf("periodicRemark(%d, %d) =\n%s\nwant\n%s", tc.redisTotal, tc.admitted, got, tc.want)
		}
	}
	// Replayed: in one minute each of the three processes syncs once (at
	// 30, 40 and 50 s), and what they admit after is never pushed; over
	// five, the whole counts pushed again and again outweigh it.
	for _, tc := range []struct {
		minutes int
		want    string
	}{
		{1, "(fewer: "},
		{5, "×: whole counts pushed every sync)"},
	} {
		r := replaySmall(t, tc.minutes, "periodic")["periodic"]
		if !strings.Contains(r.Extra, tc.want) {
			t.Errorf("%d min: remark %q; want %q", tc.minutes, r.Extra, tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-h"}, 0},
		{[]string{"-help"}, 0},
		{[]string{"-nosuch"}, 1},
		{[]string{"-hours", "0"}, 1},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if got := exitCode(err); got != tc.want {
			t.Errorf("run(%q) = %v: exit status %d; want %d", tc.args, err, got, tc.want)
		}
		if !strings.Contains(errOut.String(), "Usage of replay") && tc.args[0] != "-hours" {
			t.Errorf("run(%q): no usage on stderr:\n%s", tc.args, errOut.String())
		}
	}
	if got := exitCode(nil); got != 0 {
		t.Errorf("exitCode(nil) = %d; want 0", got)
	}
}

func TestReplayFloodgate(t *testing.T) {
	// Six simulated minutes of the incident's traffic: long enough for the
	// hybrid store's one-time first-sight reads (one per tenant per
	// process) to weigh little.
	const minutes = 6
	res := replaySmall(t, minutes, "relaxed", "strict")

	r := replaySmall(t, 1, "redis")["redis"]
	// One EVALSHA per decision; the connection handshake and the first
	// EVAL (NOSCRIPT fallback) are the only extra commands.
	if extra := r.Commands - r.Requests; extra < 0 || extra > 10 {
		t.Errorf("redis store: %d commands for %d decisions; want one each (+ handshake)", r.Commands, r.Requests)
	}
	if r.Exact.OverLimit != 0 || r.Exact.WronglyDenied != 0 {
		t.Errorf("redis store: over %d, wrongly denied %d; want an exact limiter", r.Exact.OverLimit, r.Exact.WronglyDenied)
	}

	rel := res["relaxed"]
	if c := rel.CommandsPerRequest(); c > 0.02 {
		t.Errorf("hybrid relaxed: %.4f commands/request; want ≤ 0.02 at a 1 s interval", c)
	}
	if rel.Exact.MaxMinute > 126 {
		t.Errorf("hybrid relaxed: %d admitted in a tenant-minute; want ≤ 126", rel.Exact.MaxMinute)
	}

	st := res["strict"]
	if st.Exact.OverLimit != 0 || st.Exact.MaxMinute > 120 {
		t.Errorf("hybrid strict: %d over the limit, %d in a tenant-minute; want never over 120", st.Exact.OverLimit, st.Exact.MaxMinute)
	}
	if c := st.CommandsPerRequest(); c > 0.05 {
		t.Errorf("hybrid strict: %.4f commands/request; want ≤ 0.05", c)
	}
	for _, h := range []*Result{rel, st} {
		if !strings.Contains(h.Extra, "flushes") {
			t.Errorf("%s: remark %q lacks the store statistics", h.Spec.Key, h.Extra)
		}
		// Flushed every simulated second by each of the three processes.
		if want := int64(3 * minutes * 60); h.RoundTrips < want-3 {
			t.Errorf("%s: %d round trips; want at least the %d flushes", h.Spec.Key, h.RoundTrips, want)
		}
	}
}

func TestEmbeddedSpans(t *testing.T) {
	o := Options{Workload: incidentWorkload()}
	spec := StrategySpec{EmbeddedSpan: 5 * time.Minute}
	if got := o.workloadFor(spec).Duration; got != 5*time.Minute {
		t.Errorf("embedded span: replays %v; want 5m", got)
	}
	o.Full = true
	if got := o.workloadFor(spec).Duration; got != 3*time.Hour {
		t.Errorf("-full: replays %v; want 3h", got)
	}
	o.Full, o.Shared = false, &remote{}
	if got := o.workloadFor(spec).Duration; got != 3*time.Hour {
		t.Errorf("real server: replays %v; want 3h", got)
	}
}

// TestReplayRealRedisMatchesCommandStats replays a few minutes against a
// redis-server of the test's own (a shared one runs other tests' commands
// too) and checks that the client-side counts match INFO commandstats.
func TestReplayRealRedisMatchesCommandStats(t *testing.T) {
	redistest.NeedAddr(t)
	srv := redistest.StartServer(t, 7301)
	ctx := context.Background()
	rs, err := newRemote(ctx, []string{srv.Addr}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	specs, err := selectSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	w := smallWorkload(2)
	results, err := Replay(ctx, Options{Workload: w, Policy: incidentPolicy(), Interval: time.Second, Specs: specs, Shared: rs})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Duration != w.Duration {
			t.Errorf("%s: replayed %v on a real server; want all %v", r.Spec.Key, r.Duration, w.Duration)
		}
		s := r.ServerSent()
		if d := float64(s-r.Commands) / float64(r.Commands); d < -0.01 || d > 0.01 {
			t.Errorf("%s: hook counted %d commands, INFO commandstats %d (%.2f %%); want within 1 %%", r.Spec.Key, r.Commands, s, 100*d)
		}
	}
	// The run deleted its keys.
	n, err := rs.admin.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n > 3 { // hybrid heartbeat/flush-id keys may live on under their own names
		keys, _ := rs.admin.Keys(ctx, "*").Result()
		t.Errorf("%d keys left after the replay: %v", n, keys[:min(len(keys), 10)])
	}
}

// TestReplayCluster replays a simulated minute on the Redis Cluster at
// REDIS_CLUSTER_ADDRS. The cluster is shared with other tests, so its
// INFO commandstats are not compared here; the client-side counts, the
// decisions and the clean-up are.
func TestReplayCluster(t *testing.T) {
	addrs := redistest.ClusterAddrs()
	if len(addrs) == 0 {
		t.Skip("REDIS_CLUSTER_ADDRS not set: skipping the replay on a Redis Cluster")
	}
	ctx := context.Background()
	rs, err := newRemote(ctx, addrs, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	specs, err := selectSpecs("naive,redis,relaxed")
	if err != nil {
		t.Fatal(err)
	}
	results, err := Replay(ctx, Options{Workload: smallWorkload(1), Policy: incidentPolicy(), Interval: time.Second, Specs: specs, Shared: rs})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Exact.OverLimit != 0 && r.Spec.Key != "relaxed" {
			t.Errorf("%s: %d over the limit on the cluster; want 0", r.Spec.Key, r.Exact.OverLimit)
		}
		if r.ServerCmds == nil || redisstats.Total(r.ServerCmds) < r.Commands {
			t.Errorf("%s: server counted %d commands, clients sent %d", r.Spec.Key, redisstats.Total(r.ServerCmds), r.Commands)
		}
	}
	if c := results[0].CommandsPerRequest(); c < 2 || c > 4 {
		t.Errorf("naive on the cluster: %.3f commands/request; want 2 to 4", c)
	}
	if r := results[1]; r.Commands < r.Requests || r.Commands > r.Requests+20 {
		t.Errorf("redis store on the cluster: %d commands for %d decisions; want one each", r.Commands, r.Requests)
	}
	// Replay deleted every key it wrote, on every master.
	var (
		mu   sync.Mutex
		left int
	)
	err = rs.admin.(*goredis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		keys, err := c.Keys(ctx, "fg-replay:"+strconv.Itoa(os.Getpid())+":*").Result()
		mu.Lock()
		left += len(keys)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d keys of this run left on the cluster", left)
	}
}
