package limiter

import (
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
)

// defaultStore is the store of a limiter built without WithStore: the
// hybrid store with no remote, which keeps everything in process memory and
// starts no goroutine. To share limits across processes, pass
// WithStore(hybrid.New(redis.New(client))).
func defaultStore() store.Store { return hybrid.New(nil) }
