// Package httplimit is floodgate's net/http middleware: it derives a key
// from each request, asks a [limiter.Limiter] whether the request may
// proceed, sets the standard rate-limit response headers and answers 429
// Too Many Requests with an RFC 9457 problem document when it may not.
//
//	lim, _ := limiter.New(algorithms.FixedWindow(limiter.PerMinute(120)), limiter.WithStore(st))
//	mw, err := httplimit.New(lim, httplimit.KeyByHeader("X-Tenant-ID"), httplimit.Exempt("/health"))
//	if err != nil { ... }
//	http.ListenAndServe(addr, mw.Wrap(mux))
//
// # Keys
//
// The default key is the connection's peer address ([KeyByIP]), never a
// request header: X-Forwarded-For, Forwarded and X-Real-IP are written by
// the client unless a proxy you run rewrites them, so they are read only
// when [TrustProxies] names those proxies, and then the key is the
// right-most address in the chain that is not a trusted proxy. IPv6
// clients are grouped by /64 ([IPv6Prefix] changes it); IPv4-mapped IPv6
// addresses count as IPv4. [KeyByHeader], [KeyFunc] and [Keys] derive
// other keys.
//
// # Headers
//
// Every counted response carries RateLimit-Policy and RateLimit as in
// draft-ietf-httpapi-ratelimit-headers-10 and the widely used
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset, each set
// switchable with [Headers]; a 429 also carries Retry-After in seconds,
// rounded up. The values describe the Result's binding limit.
//
// # Failures
//
// When the limiter fails (its store is unreachable), the request goes on
// (fail-open, the default) or gets 503 ([FailClosed]), and the error goes
// to a hook ([ErrorHook], log/slog by default) at most once per second. No
// error text ever reaches the client. A key function that fails answers
// 400.
//
// [Guard.Decide] is the whole decision as one call, for adapters of other
// routers (see the chilimit and ginlimit packages); [Decider] is to Decide
// what Middleware is to Wrap: it cannot fail, and answers 500 when the
// options are invalid.
package httplimit
