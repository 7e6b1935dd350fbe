package httplimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/floodgate-go/floodgate/internal/cowmap"
	"github.com/floodgate-go/floodgate/limiter"
)

// Errors reported by New and by key functions.
var (
	// ErrInvalidOption reports an option New cannot use: a nil limiter,
	// handler or function, a malformed CIDR, an unknown proxy header, an
	// IPv6 prefix length outside 0..128, an exempt prefix that is not an
	// absolute path.
	ErrInvalidOption = errors.New("httplimit: invalid option")

	// ErrMissingHeader is returned by the key of KeyByHeader when the
	// header is absent and RejectMissingHeader is in force.
	ErrMissingHeader = errors.New("httplimit: missing key header")

	// ErrNoClientAddr is returned by the key of KeyByIP when the request
	// has no remote address.
	ErrNoClientAddr = errors.New("httplimit: no client address")
)

// Guard is a configured middleware: it decides, for each request, whether
// it may proceed. Build one with New; [Guard.Wrap] turns it into an
// http.Handler, [Guard.Decide] runs one decision for adapters of other
// routers.
//
// A Guard is safe for concurrent use and owns no goroutine; it needs no
// Close. The limiter stays the caller's.
type Guard struct {
	settings
	lim *limiter.Limiter

	err     error        // invalid options: every request is refused (see build)
	nextLog atomic.Int64 // Unix ns before which the hook stays quiet

	info cowmap.Map[limiter.Limit, *limitInfo] // header parts per limit
}

// Option configures a Guard. Options apply in order; for single-valued
// settings the last one wins, Exempt and TrustProxies accumulate. A [Key]
// is an Option too: it selects how requests are keyed.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// settings are a Guard's configuration, as the options and build leave it.
type settings struct {
	key           Key
	trusted       []netip.Prefix
	proxyHeader   string
	v6Bits        int
	rejectMissing bool
	exempt        []string

	headers    HeaderSet
	policyName func(limiter.Limit) string
	denied     http.Handler
	failClosed bool

	hook func(*http.Request, error)
	now  func() time.Time
}

// config is what options apply to: the settings, the proxies as given to
// TrustProxies (New parses them) and what is wrong so far.
type config struct {
	settings
	proxies []string
	bad     []string
}

func (c *config) fail(format string, args ...any) {
	c.bad = append(c.bad, fmt.Sprintf(format, args...))
}

// TrustProxies names the reverse proxies, as CIDRs ("10.0.0.0/8") or
// single addresses ("192.0.2.7"), whose forwarding header KeyByIP may
// believe. Without it the header is ignored: the key is the connection's
// peer. With it, when the peer is trusted, the key is the right-most
// address of the chain (header entries, then the peer) that is not
// trusted. A malformed CIDR makes New fail.
func TrustProxies(cidrs ...string) Option {
	return optionFunc(func(c *config) { c.proxies = append(c.proxies, cidrs...) })
}

// ProxyHeader selects the forwarding header that TrustProxies applies to:
// "X-Forwarded-For" (the default), "Forwarded" (RFC 7239) or "X-Real-IP".
// Only one is read, the one your proxies set or overwrite: a header the
// proxy passes through untouched is the client's to forge.
func ProxyHeader(name string) Option {
	return optionFunc(func(c *config) { c.proxyHeader = http.CanonicalHeaderKey(name) })
}

// IPv6Prefix sets how many leading bits of an IPv6 address form the key
// of KeyByIP; the default is 64, since one host usually holds a whole /64.
// 128 keys each address alone. bits must be in 0..128.
func IPv6Prefix(bits int) Option {
	return optionFunc(func(c *config) { c.v6Bits = bits })
}

// RejectMissingHeader makes KeyByHeader answer 400 Bad Request to a request
// without the header, instead of keying it by client address.
func RejectMissingHeader() Option {
	return optionFunc(func(c *config) { c.rejectMissing = true })
}

// Exempt lists path prefixes that are never counted and get no rate-limit
// headers. A prefix matches a path equal to it or continuing with "/":
// Exempt("/health") covers /health and /health/live but not /healthz; a
// prefix ending in "/" ("/static/") covers everything below it. Only clean
// paths are exempt: /health/../api and //health are counted, so that a
// router resolving such paths cannot be used to dodge the limit. Each
// prefix must start with "/" and must not be "/" itself.
func Exempt(prefixes ...string) Option {
	return optionFunc(func(c *config) {
		for _, p := range prefixes {
			if !strings.HasPrefix(p, "/") || p == "/" {
				c.fail("exempt prefix %q: must start with / and name more than /", p)
				continue
			}
			c.exempt = append(c.exempt, p)
		}
	})
}

// DeniedHandler replaces the response to a request over its limit. The
// handler runs after the rate-limit headers and Retry-After are set, and
// can read the decision with [ResultFrom]; it must write the status (429
// is expected). The default writes a problem document of type
// quota-exceeded.
func DeniedHandler(h http.Handler) Option {
	return optionFunc(func(c *config) {
		if h == nil {
			c.fail("nil denied handler")
		}
		c.denied = h
	})
}

// FailOpen lets requests through when the limiter fails, e.g. when its
// store is unreachable. It is the default.
func FailOpen() Option { return optionFunc(func(c *config) { c.failClosed = false }) }

// FailClosed answers 503 Service Unavailable when the limiter fails.
func FailClosed() Option { return optionFunc(func(c *config) { c.failClosed = true }) }

// ErrorHook sets the function told about limiter failures (store errors,
// invalid limits from a limit function). It is called on the request's
// goroutine at most once per second, however many requests fail; the
// errors in between are dropped. The default logs with log/slog's default
// logger at level Error.
func ErrorHook(f func(r *http.Request, err error)) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.fail("nil error hook")
		}
		c.hook = f
	})
}

// WithClock sets the clock that paces the error hook; tests pass a fake
// one. The default is the limiter's clock (limiter.Limiter.Now). Rate-limit decisions use the limiter's own
// clock (limiter.WithClock).
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now == nil {
			c.fail("nil clock")
		}
		c.now = now
	})
}

// New returns a Guard over lim. It validates every option and returns an
// error wrapping ErrInvalidOption that lists what is wrong.
func New(lim *limiter.Limiter, opts ...Option) (*Guard, error) {
	g := build(lim, opts)
	if g.err != nil {
		return nil, g.err
	}
	return g, nil
}

// build applies and validates opts once. With invalid options the Guard it
// returns holds the error in err and answers every request 500, reporting
// the error through the hook set in opts, if it was valid, else through
// slog: that is what Middleware and Decider hand out, never New.
func build(lim *limiter.Limiter, opts []Option) *Guard {
	c := config{settings: settings{
		key:         KeyByIP(),
		proxyHeader: HeaderXForwardedFor,
		v6Bits:      64,
		headers:     DraftHeaders | XRateLimitHeaders,
		policyName:  DefaultPolicyName,
		hook:        slogHook,
	}}
	if lim == nil {
		c.fail("nil limiter")
	} else {
		c.now = lim.Now // time enters through the limiter's clock
	}
	for _, o := range opts {
		if o == nil {
			c.fail("nil option")
			continue
		}
		o.apply(&c)
	}
	if msg := c.key.check(); msg != "" {
		c.fail("%s", msg)
	}
	for _, s := range c.proxies {
		p, err := parseTrusted(s)
		if err != nil {
			c.fail("trusted proxy %q: not a CIDR or address", s)
			continue
		}
		c.trusted = append(c.trusted, p)
	}
	switch c.proxyHeader {
	case HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP:
	default:
		c.fail("proxy header %q: want X-Forwarded-For, Forwarded or X-Real-IP", c.proxyHeader)
	}
	if c.v6Bits < 0 || c.v6Bits > 128 {
		c.fail("IPv6 prefix length %d outside 0..128", c.v6Bits)
	}
	if c.headers&^(DraftHeaders|XRateLimitHeaders) != 0 {
		c.fail("unknown header set %#x", uint8(c.headers))
	}
	if c.policyName == nil {
		c.fail("nil policy name function")
	}
	g := &Guard{settings: c.settings, lim: lim}
	if len(c.bad) > 0 {
		g.err = fmt.Errorf("%w: %s", ErrInvalidOption, strings.Join(c.bad, "; "))
		if g.hook == nil {
			g.hook = slogHook
		}
		if g.now == nil {
			// No limiter and no valid WithClock, so no clock: the report
			// is made once.
			g.now = func() time.Time { return time.Time{} }
		}
	}
	return g
}

// parseTrusted parses a CIDR or a single address, IPv4-mapped IPv6 ranges
// turned into IPv4 ones, as client addresses are.
func parseTrusted(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Middleware returns New(lim, opts...) as a func(http.Handler) http.Handler
// for routers that chain middleware that way. It never panics: with
// invalid options every request gets 500 Internal Server Error and the
// error goes to the error hook (at most once per second). Call New at
// startup to get the error instead.
func Middleware(lim *limiter.Limiter, opts ...Option) func(http.Handler) http.Handler {
	return build(lim, opts).Wrap
}

// Decider returns [Guard.Decide] of New(lim, opts...) as a function, for
// adapters of routers whose middleware constructors cannot return an
// error (ginlimit uses it). Like Middleware it never panics: with invalid
// options the function answers every request 500 Internal Server Error and
// returns false, and the error goes to the error hook (at most once per
// second).
func Decider(lim *limiter.Limiter, opts ...Option) func(http.ResponseWriter, *http.Request) bool {
	return build(lim, opts).Decide
}

// Wrap returns a handler that runs Decide and, when the request may
// proceed, next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Decide(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Decide makes the rate-limit decision for r. When r may proceed it sets
// the rate-limit headers on w and returns true; the caller then serves the
// request. Otherwise it writes the whole response (429 through the denied
// handler, 400 for a request without a usable key, 503 when the limiter
// fails and FailClosed is set) and returns false.
//
// Requests on exempt paths return true untouched. Decide is what Wrap
// runs; adapters for other routers call it with their writer and request.
func (g *Guard) Decide(w http.ResponseWriter, r *http.Request) bool {
	if g.err != nil {
		g.report(r, g.err)
		writeProblem(w, http.StatusInternalServerError, problemInternal)
		return false
	}
	if r.URL != nil && g.isExempt(r.URL.Path) {
		return true
	}
	key, err := g.key.fn(g, r)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, problemBadKey)
		return false
	}
	res, err := g.lim.Allow(r.Context(), key)
	if err != nil {
		if errors.Is(err, limiter.ErrEmptyKey) || errors.Is(err, limiter.ErrKeyTooLong) {
			writeProblem(w, http.StatusBadRequest, problemBadKey)
			return false
		}
		if r.Context().Err() == nil { // a client that went away is no limiter failure
			g.report(r, err)
		}
		if g.failClosed {
			writeProblem(w, http.StatusServiceUnavailable, problemUnavailable)
			return false
		}
		return true
	}
	g.setHeaders(w.Header(), res)
	if res.Allowed {
		return true
	}
	if g.denied == nil { // the default: no request clone, no context value
		g.quotaExceeded(w, res)
		return false
	}
	g.denied.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), resultKey{}, res)))
	return false
}

// Key returns the rate-limit key of r, as Decide derives it. It is meant
// for logs and tests.
func (g *Guard) Key(r *http.Request) (string, error) { return g.key.fn(g, r) }

// isExempt reports whether p is below an exempt prefix and clean.
func (g *Guard) isExempt(p string) bool {
	for _, pre := range g.exempt {
		if !strings.HasPrefix(p, pre) {
			continue
		}
		if len(p) != len(pre) && pre[len(pre)-1] != '/' && p[len(pre)] != '/' {
			continue
		}
		return isClean(p)
	}
	return false
}

// isClean reports whether p is its own path.Clean form, give or take a
// trailing slash. path.Clean does not allocate for clean paths.
func isClean(p string) bool {
	c := path.Clean(p)
	if c == p {
		return true
	}
	return len(p) > 1 && p[len(p)-1] == '/' && c == p[:len(p)-1]
}

type resultKey struct{}

// ResultFrom returns the decision of the request whose context is ctx. It
// is set for the denied handler; on allowed requests the decision is in
// the response headers, and ResultFrom reports false (keeping the allowed
// path free of allocations).
func ResultFrom(ctx context.Context) (limiter.Result, bool) {
	res, ok := ctx.Value(resultKey{}).(limiter.Result)
	return res, ok
}

// report passes err to the hook unless it reported less than a second ago.
func (g *Guard) report(r *http.Request, err error) {
	now := g.now().UnixNano()
	next := g.nextLog.Load()
	// A clock that went back more than the interval is not trusted to
	// keep the hook quiet.
	if now < next && next-now <= int64(time.Second) {
		return
	}
	if !g.nextLog.CompareAndSwap(next, now+int64(time.Second)) {
		return // another request reports this second
	}
	g.hook(r, err)
}

// slogHook is the default error hook. It logs the path, not the query,
// which may hold credentials.
func slogHook(r *http.Request, err error) {
	p := ""
	if r.URL != nil {
		p = r.URL.Path
	}
	slog.Default().LogAttrs(r.Context(), slog.LevelError, "floodgate: rate limiter failed",
		slog.String("method", r.Method), slog.String("path", p), slog.Any("error", err))
}
