package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Workload describes the incident's traffic: Poisson arrivals at Rate
// requests per second, tenants drawn from a Zipf distribution, each request
// routed to one of Procs processes at random, for Duration of simulated time.
// The same Workload and Seed always yield the same sequence.
type Workload struct {
	Rate     float64       // requests per second
	Tenants  int           // number of tenants
	ZipfS    float64       // Zipf exponent, > 1
	Procs    int           // number of processes sharing the limit
	Duration time.Duration // simulated time
	Seed     uint64
}

// incidentWorkload is the incident: 203 requests/s over 100 tenants, Zipf
// s = 1.1, three processes, three hours.
func incidentWorkload() Workload {
	return Workload{Rate: 203, Tenants: 100, ZipfS: 1.1, Procs: 3, Duration: 3 * time.Hour, Seed: 20260127}
}

// Bounds of a workload. Each keeps a run of the replay finite and its
// memory modest; the incident (203 requests/s, 100 tenants, 3 processes,
// 3 hours: 2.2 million requests) is far inside all of them.
const (
	maxRate     = 100_000       // requests per simulated second
	maxTenants  = 1_000_000     // tenants
	maxProcs    = 100           // processes
	maxHours    = 168           // simulated hours: a week
	maxZipfS    = 100           // beyond a few, all traffic is the busiest tenant's
	maxRequests = 1_000_000_000 // expected requests in one run: Rate × seconds
	// maxProcTenants bounds Procs × Tenants: the periodic strategy keeps a
	// count per tenant in every process (48 bytes each) and scans them all
	// at every sync.
	maxProcTenants = 10_000_000
)

// Validate reports whether w can be generated, and replayed in a bounded
// time and memory. Its errors name the command's flags.
func (w Workload) Validate() error {
	switch {
	case !(w.Rate > 0 && w.Rate <= maxRate): // NaN fails too
		return fmt.Errorf("-rate %v out of range: requests per simulated second must be above 0 and at most %s", w.Rate, groupInt(maxRate))
	case w.Tenants < 1 || w.Tenants > maxTenants:
		return fmt.Errorf("-tenants %d out of range: want 1 to %s", w.Tenants, groupInt(maxTenants))
	case !(w.ZipfS > 1 && w.ZipfS <= maxZipfS):
		return fmt.Errorf("-zipf %v out of range: the Zipf exponent must be above 1 and at most %d", w.ZipfS, maxZipfS)
	case w.Procs < 1 || w.Procs > maxProcs:
		return fmt.Errorf("-procs %d out of range: want 1 to %d", w.Procs, maxProcs)
	case w.Duration <= 0 || w.Duration > maxHours*time.Hour:
		return fmt.Errorf("-hours: simulated duration %v out of range: must be above 0 and at most %dh", w.Duration, maxHours)
	case w.Rate*w.Duration.Seconds() > maxRequests:
		return fmt.Errorf("-rate %v over -hours %v is %s requests: at most %s fit in one run (-rate × -hours × 3600)",
			w.Rate, w.Duration.Hours(), groupInt(int64(w.Rate*w.Duration.Seconds())), groupInt(maxRequests))
	case int64(w.Procs)*int64(w.Tenants) > maxProcTenants:
		return fmt.Errorf("-procs %d × -tenants %d is %s per-process tenant counters: at most %s",
			w.Procs, w.Tenants, groupInt(int64(w.Procs)*int64(w.Tenants)), groupInt(maxProcTenants))
	}
	return nil
}

// Expected returns the expected number of requests.
func (w Workload) Expected() int64 { return int64(w.Rate * w.Duration.Seconds()) }

// Request is one request of the workload.
type Request struct {
	At     time.Duration // offset from the start of the replay
	Tenant int           // 0 is the busiest tenant
	Proc   int           // the process that serves it
}

// Generator yields the requests of a Workload in time order.
type Generator struct {
	w    Workload
	rng  *rand.Rand
	zipf *rand.Zipf
	at   float64 // seconds
}

// NewGenerator returns a generator at the start of w. w must be valid.
func NewGenerator(w Workload) *Generator {
	rng := rand.New(rand.NewPCG(w.Seed, w.Seed^0x9e3779b97f4a7c15))
	return &Generator{w: w, rng: rng, zipf: rand.NewZipf(rng, w.ZipfS, 1, uint64(w.Tenants-1))}
}

// Next returns the next request, or false once the workload's duration has
// passed.
func (g *Generator) Next() (Request, bool) {
	g.at += g.rng.ExpFloat64() / g.w.Rate
	at := time.Duration(g.at * float64(time.Second))
	if at >= g.w.Duration {
		return Request{}, false
	}
	return Request{At: at, Tenant: int(g.zipf.Uint64()), Proc: g.rng.IntN(g.w.Procs)}, true
}
