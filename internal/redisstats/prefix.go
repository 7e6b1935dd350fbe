package redisstats

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ErrEmptyPrefix is returned by DeletePrefix for the empty prefix, which
// would delete every key of a server that others may share.
var ErrEmptyPrefix = errors.New("redisstats: empty prefix: refusing to delete every key")

// scanCount is the COUNT hint of DeletePrefix's SCAN, and so about the
// number of keys it deletes per round trip.
const scanCount = 1000

// DeletePrefix deletes every key whose name starts with prefix (a literal
// prefix: glob characters in it match only themselves). It finds them with
// SCAN, on every master of a [goredis.ClusterClient], and unlinks each page
// of keys it finds in one pipeline. Keys written while it runs may survive.
// Every key whose name starts with prefix must belong to the caller.
func DeletePrefix(ctx context.Context, c goredis.UniversalClient, prefix string) error {
	if prefix == "" {
		return ErrEmptyPrefix
	}
	match := globEscape(prefix) + "*"
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			return deleteMatching(ctx, node, match)
		})
	} else {
		err = deleteMatching(ctx, c, match)
	}
	if err != nil {
		return fmt.Errorf("redisstats: deleting keys %q*: %w", prefix, err)
	}
	return nil
}

// deleteMatching deletes the keys of one server that match the SCAN
// pattern match. Keys are unlinked one per command, as keys of one page may
// hash to different cluster slots.
func deleteMatching(ctx context.Context, c goredis.Cmdable, match string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// globEscape escapes the glob metacharacters of s for SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
