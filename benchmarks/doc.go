// Package benchmarks holds floodgate's `go test -bench` suites: every
// algorithm over every store, the memory store beside x/time/rate, and, in
// the nested module benchmarks/peers, other Go rate limiters. The incident
// replay, the project's main demonstration, is benchmarks/replay.
package benchmarks
