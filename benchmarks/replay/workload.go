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

// Validate reports whether w can be generated.
func (w Workload) Validate() error {
	switch {
	case !(w.Rate > 0):
		return fmt.Errorf("replay: rate %v must be positive", w.Rate)
	case w.Tenants < 1:
		return fmt.Errorf("replay: %d tenants, need at least 1", w.Tenants)
	case !(w.ZipfS > 1):
		return fmt.Errorf("replay: Zipf exponent %v must be above 1", w.ZipfS)
	case w.Procs < 1:
		return fmt.Errorf("replay: %d processes, need at least 1", w.Procs)
	case w.Duration <= 0:
		return fmt.Errorf("replay: duration %v must be positive", w.Duration)
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
