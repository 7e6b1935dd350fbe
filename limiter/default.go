package limiter

import (
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
)

// defaultStore is the store of a limiter built without WithStore.
// TODO(hybrid): the hybrid store with no remote becomes the default.
func defaultStore() store.Store { return memory.New() }
