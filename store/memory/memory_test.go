package memory_test

import (
	"testing"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}

func TestConformanceOneShard(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New(memory.WithShards(1)) })
}
