package hybrid

import (
	"sync"
	"testing"

	"github.com/floodgate-go/floodgate/store"
)

// TestMarkResetNeverGoesBack: two Resets of one key at once leave the
// key's mark at the later sequence number, so a call that started between
// them still sees the later reset (resetSince).
func TestMarkResetNeverGoesBack(t *testing.T) {
	k := store.Key{Namespace: "n", Caller: "c", Window: 1}
	for round := range 2000 {
		s := &Store{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 2 {
			wg.Go(func() {
				<-start
				s.markReset([]store.Key{k})
			})
		}
		close(start)
		wg.Wait()
		if m := s.resetKeys[k]; m.seq != s.resetSeq.Load() {
			t.Fatalf("round %d: the mark holds sequence %d, the latest reset is %d", round, m.seq, s.resetSeq.Load())
		}
		if !s.resetSince(k, 1) {
			t.Fatalf("round %d: a call that started after the first reset does not see the second", round)
		}
	}
}
