package hybrid_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T) store.Store
	}{
		{"remote=none", func(t *testing.T) store.Store { return hybrid.New(nil) }},
		{"remote=none/strict", func(t *testing.T) store.Store { return hybrid.New(nil, hybrid.Strict()) }},
		{"remote=fake/relaxed", func(t *testing.T) store.Store {
			return hybrid.New(newFakeRemote(), hybrid.WithoutFlusher())
		}},
		{"remote=fake/strict", func(t *testing.T) store.Store {
			return hybrid.New(newFakeRemote(), hybrid.WithoutFlusher(), hybrid.Strict())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { storetest.Run(t, tt.make) })
	}
}
