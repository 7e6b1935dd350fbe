package peers

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/internal/cputime"
)

// BenchmarkInProcessInterleaved runs every in-process library on one key's
// allowed path in turn, in blocks of 512 decisions, b.N decisions each, so
// that every state of a noisy machine falls on all of them alike. For each
// library it reports the mean wall-clock time per decision
// (<lib>-ns/op) and, on Linux, the least thread CPU time per decision over
// its blocks (<lib>-cpu-min-ns/op): the cost of a decision when nothing
// else takes the CPU or its caches, which the peers' ns/op cannot show on
// a shared virtual machine.
func BenchmarkInProcessInterleaved(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx := context.Background()
	peers := inProcessPeers()
	ins := make([]instance, len(peers))
	for i, p := range peers {
		ins[i] = p.new(b)
		defer ins[i].close()
		if ok, err := ins[i].allow(ctx, "tenant"); !ok || err != nil {
			b.Fatalf("%s: first decision = %v, %v; want allowed", p.name, ok, err)
		}
	}
	const block = 512
	wall := make([]time.Duration, len(ins))
	cpu := make([]time.Duration, len(ins))
	best := make([]time.Duration, len(ins))
	cpuOK := true
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		for i, in := range ins {
			c0, ok0 := cputime.Thread()
			t0 := time.Now()
			for range block {
				if ok, err := in.allow(ctx, "tenant"); !ok || err != nil {
					b.Fatalf("%s: a decision = %v, %v; the benchmark measures the allowed path", peers[i].name, ok, err)
				}
			}
			wall[i] += time.Since(t0)
			c1, ok1 := cputime.Thread()
			cpuOK = cpuOK && ok0 && ok1
			d := c1 - c0
			cpu[i] += d
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	b.StopTimer()
	n := float64((b.N + block - 1) / block * block)
	for i, p := range peers {
		b.ReportMetric(float64(wall[i].Nanoseconds())/n, p.name+"-ns/op")
		if cpuOK {
			b.ReportMetric(float64(cpu[i].Nanoseconds())/n, p.name+"-cpu-ns/op")
			b.ReportMetric(float64(best[i].Nanoseconds())/block, p.name+"-cpu-min-ns/op")
		}
	}
}
