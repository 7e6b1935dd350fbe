package cputime

import (
	"runtime"
	"testing"
)

// TestThreadAdvances: on Linux the thread's CPU time grows while it works
// and never goes back.
func TestThreadAdvances(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := Thread()
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("Thread() not available on Linux")
		}
		t.Skip("no per-thread CPU clock on " + runtime.GOOS)
	}
	x := 0
	for i := range 20_000_000 {
		x += i & 3
	}
	end, _ := Thread()
	if end <= start {
		t.Fatalf("Thread() went from %v to %v over a busy loop (x=%d)", start, end, x)
	}
}
