package httplimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
)

// Header names, in the canonical form http.Header keys take (HTTP field
// names are case-insensitive; the drafts spell them RateLimit-Policy,
// RateLimit and X-RateLimit-*).
const (
	// HeaderRateLimitPolicy is the draft-ietf-httpapi-ratelimit-headers-10
	// RateLimit-Policy field: the binding quota, e.g. "minute";q=120;w=60.
	HeaderRateLimitPolicy = "Ratelimit-Policy"
	// HeaderRateLimit is the draft's RateLimit field: the remaining quota and
	// the seconds until more is available, e.g. "minute";r=17;t=42.
	HeaderRateLimit = "Ratelimit"
	// HeaderXRateLimitLimit is the quota of the binding limit.
	HeaderXRateLimitLimit = "X-Ratelimit-Limit"
	// HeaderXRateLimitRemaining is the remaining quota.
	HeaderXRateLimitRemaining = "X-Ratelimit-Remaining"
	// HeaderXRateLimitReset is the number of seconds, rounded up, until the
	// binding limit's quota is whole again.
	HeaderXRateLimitReset = "X-Ratelimit-Reset"
	// HeaderRetryAfter is sent with 429: seconds until the request would be
	// admitted, rounded up, at least 1.
	HeaderRetryAfter = "Retry-After"

	// HeaderXForwardedFor is the de-facto forwarding header, a list of
	// addresses each proxy appends to; ProxyHeader's default.
	HeaderXForwardedFor = "X-Forwarded-For"
	// HeaderForwarded is the RFC 7239 forwarding header, whose for=
	// parameters KeyByIP reads when ProxyHeader selects it.
	HeaderForwarded = "Forwarded"
	// HeaderXRealIP is the single-address header some proxies set to the
	// client they saw.
	HeaderXRealIP = "X-Real-Ip"
)

// HeaderSet selects the rate-limit headers a Guard sends.
type HeaderSet uint8

const (
	// DraftHeaders are RateLimit-Policy and RateLimit.
	DraftHeaders HeaderSet = 1 << iota
	// XRateLimitHeaders are X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset.
	XRateLimitHeaders
)

// Headers selects the rate-limit header sets sent with counted responses;
// the default is DraftHeaders|XRateLimitHeaders, and 0 sends none.
// Retry-After is always sent with 429.
func Headers(set HeaderSet) Option {
	return optionFunc(func(c *config) { c.headers = set })
}

// PolicyName sets the function that names a limit in RateLimit-Policy,
// RateLimit and the 429 problem document; the default is
// DefaultPolicyName. Bytes outside printable ASCII in the name are sent
// as "_".
func PolicyName(f func(limiter.Limit) string) Option {
	return optionFunc(func(c *config) { c.policyName = f })
}

// DefaultPolicyName names a limit after its period: "second", "minute",
// "hour", "day", else the period as time.Duration prints it ("90s" is
// "1m30s").
func DefaultPolicyName(l limiter.Limit) string {
	switch l.Period {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return l.Period.String()
}

// limitInfo holds the parts of the headers that depend on the limit only.
type limitInfo struct {
	name   string // policy name as sent
	quoted string // the name as a structured-field string
	policy string // RateLimit-Policy value
	count  string // X-RateLimit-Limit value

	// The default 429 body around its one variable part, the seconds to
	// wait: head + seconds + (one or many) + tail.
	deniedHead, deniedOne, deniedMany, deniedTail string
}

// limitInfo returns the cached header parts of l. The cache is copied on
// write and bounded; limits from a limit function past the bound are
// computed for each request.
func (g *Guard) limitInfo(l limiter.Limit) *limitInfo {
	if in, ok := g.info.Load(l); ok {
		return in
	}
	return g.info.Add(l, g.newLimitInfo(l))
}

func (g *Guard) newLimitInfo(l limiter.Limit) *limitInfo {
	raw := g.policyName(l)
	name := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c < 0x20 || c > 0x7e {
			c = '_'
		}
		name = append(name, c)
	}
	quoted := appendSFString(nil, string(name))
	policy := append([]byte(nil), quoted...)
	policy = append(policy, ";q="...)
	policy = strconv.AppendInt(policy, l.Count, 10)
	policy = append(policy, ";w="...)
	policy = strconv.AppendInt(policy, max(ceilSeconds(l.Period), 1), 10)
	in := &limitInfo{
		name:   string(name),
		quoted: string(quoted),
		policy: string(policy),
		count:  strconv.FormatInt(l.Count, 10),
	}
	in.deniedHead, in.deniedOne, in.deniedMany, in.deniedTail = quotaExceededParts(in.name)
	return in
}

// appendSFString appends s, printable ASCII, as a structured-field String
// (RFC 8941, section 3.3.3).
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d-1)/time.Second) + 1
}

// retrySeconds is the Retry-After of a denied res: its RetryAfter in whole
// seconds, rounded up so that a client coming back then is admitted, and
// never 0.
func retrySeconds(res limiter.Result) int64 { return max(ceilSeconds(res.RetryAfter), 1) }

// setHeaders sets the rate-limit headers of res on h: two allocations, one
// for the text of the values that change with each request and one for
// the slices the header map holds.
func (g *Guard) setHeaders(h http.Header, res limiter.Result) {
	draft, x := g.headers&DraftHeaders != 0, g.headers&XRateLimitHeaders != 0
	if !draft && !x && res.Allowed {
		return
	}
	in := g.limitInfo(res.Limit)
	reset := ceilSeconds(res.ResetAfter)
	t, retry := reset, int64(0)
	if !res.Allowed {
		// Never 0 on a 429, and RateLimit's t never later than Retry-After
		// (draft-ietf-httpapi-ratelimit-headers-10, section 6).
		retry = retrySeconds(res)
		t = retry
	}

	var arr [96]byte
	buf := arr[:0]
	var ends [4]int // end offsets of RateLimit, remaining, reset, retry
	if draft {
		buf = append(buf, in.quoted...)
		buf = append(buf, ";r="...)
		buf = strconv.AppendInt(buf, res.Remaining, 10)
		buf = append(buf, ";t="...)
		buf = strconv.AppendInt(buf, t, 10)
	}
	ends[0] = len(buf)
	if x {
		buf = strconv.AppendInt(buf, res.Remaining, 10)
		ends[1] = len(buf)
		buf = strconv.AppendInt(buf, reset, 10)
	} else {
		ends[1] = len(buf)
	}
	ends[2] = len(buf)
	if retry > 0 {
		buf = strconv.AppendInt(buf, retry, 10)
	}
	ends[3] = len(buf)
	s := string(buf)

	size := 0
	if draft {
		size += 2
	}
	if x {
		size += 3
	}
	if retry > 0 {
		size++
	}
	vals := make([]string, size)
	n := 0
	set := func(name, v string) {
		vals[n] = v
		h[name] = vals[n : n+1 : n+1]
		n++
	}
	if draft {
		set(HeaderRateLimitPolicy, in.policy)
		set(HeaderRateLimit, s[:ends[0]])
	}
	if x {
		set(HeaderXRateLimitLimit, in.count)
		set(HeaderXRateLimitRemaining, s[ends[0]:ends[1]])
		set(HeaderXRateLimitReset, s[ends[1]:ends[2]])
	}
	if retry > 0 {
		set(HeaderRetryAfter, s[ends[2]:ends[3]])
	}
}
