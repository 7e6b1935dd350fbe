// Package redis is a [store.Store] kept in Redis, on go-redis v9: one
// decision is one EVALSHA of one Lua script, atomic in Redis, whatever
// algorithm and however many limits it checks.
//
// Cells of the bounded add are strings holding a decimal int64 (a count, or
// a token bucket's theoretical arrival time in Unix ns); the script computes
// on them exactly, never through Lua's doubles. Sliding logs are Redis
// Streams, trimmed with XTRIM MINID and appended with XADD at
// nanosecond-exact IDs. Every key gets a TTL inside the script; every key of
// one caller shares the hash tag {escaped caller}, so a batch runs in one
// Redis Cluster slot.
//
// Failures to reach or use Redis return errors wrapping
// store.ErrUnavailable, never a silent allow. Build the client with
// ContextTimeoutEnabled so that decisions honour the caller's deadline; see
// docs/stores.md for the settings we recommend and why.
package redis
