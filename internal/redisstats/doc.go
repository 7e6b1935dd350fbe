// Package redisstats measures the Redis traffic of go-redis v9 clients, for
// floodgate's tests, benchmarks and incident replay (benchmarks/replay):
//
//   - Counter, a go-redis hook that counts the commands and round trips a
//     client sends, in all and by command name;
//   - CommandStats, the server's own count of executed commands (INFO
//     commandstats), summed over every master of a Redis Cluster, with
//     Delta and Total to turn two readings into a cost;
//   - DeletePrefix, which removes the keys a measured run left behind under
//     its key prefix, on every master of a cluster.
//
// It is not part of floodgate's API, and it does not import package testing
// so that a command (the replay) can use it as well as tests. Test-only
// helpers (clients, servers, prefixes) are in internal/redistest.
package redisstats
