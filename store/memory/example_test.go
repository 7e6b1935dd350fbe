package memory_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// A memory store bounded to 1,000 keys: the least recently used caller is
// forgotten to make room, so memory stays bounded whatever the traffic.
func Example() {
	s := memory.New(memory.WithMaxKeys(1_000))
	defer s.Close()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(10)),
		limiter.WithStore(s), limiter.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	for i := range 5_000 {
		lim.Allow(context.Background(), "client-"+strconv.Itoa(i))
	}
	// 64 shards of 15 keys each: never more than the bound.
	fmt.Printf("%d keys held, bound %d\n", s.Len(), s.MaxKeys())
	// Output:
	// 960 keys held, bound 1000
}
