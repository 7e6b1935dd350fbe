package httplimit

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Key derives the rate-limit key of a request. A Key is also an Option:
// passing one to New makes it the Guard's key. Build Keys with KeyByIP,
// KeyByHeader, KeyFunc and Keys; the zero Key is invalid.
type Key struct {
	fn  func(g *Guard, r *http.Request) (string, error)
	bad string
}

func (k Key) apply(c *config) { c.key = k }

func (k Key) check() string {
	if k.bad != "" {
		return k.bad
	}
	if k.fn == nil {
		return "zero Key"
	}
	return ""
}

// KeyByIP keys requests by client address: the connection's peer
// (r.RemoteAddr), or, when the peer is a proxy named by TrustProxies, the
// right-most untrusted address of the forwarding chain (see ProxyHeader).
// IPv4 addresses key alone, IPv6 ones by their /64 (see IPv6Prefix), and
// IPv4-mapped IPv6 addresses as IPv4. It is the default key.
//
// A chain entry that is not an address ("unknown", an obfuscated
// identifier, garbage) ends the walk: the key is then the nearest trusted
// proxy, since anything left of the entry may be forged. When every
// address is trusted, the key is the left-most one. A peer that is not an
// IP address (a Unix socket) keys by its text, so all such clients share
// a limit; an empty RemoteAddr fails with ErrNoClientAddr.
func KeyByIP() Key { return Key{fn: (*Guard).ipKey} }

// KeyByHeader keys requests by the value of the named header, e.g. a
// tenant ID set by an authenticating proxy. A request without the header
// (or with an empty value) is keyed by KeyByIP, under a key no header
// value can equal, or rejected with 400 when RejectMissingHeader is set.
//
// Only use a header that something you run sets or verifies: a client can
// send any value and so pick its own limit.
func KeyByHeader(name string) Key {
	if name == "" {
		return Key{bad: "KeyByHeader with an empty header name"}
	}
	name = http.CanonicalHeaderKey(name)
	return Key{fn: func(g *Guard, r *http.Request) (string, error) {
		if v := firstValue(r.Header, name); v != "" {
			return v, nil
		}
		if g.rejectMissing {
			return "", ErrMissingHeader
		}
		ip, err := g.ipKey(r)
		if err != nil {
			return "", err
		}
		// Header values never hold NUL (RFC 9110, section 5.5), so this
		// key is out of their reach.
		return fallbackPrefix + ip, nil
	}}
}

const fallbackPrefix = "\x00ip:"

func firstValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// KeyFunc keys requests by f. An error from f answers 400 Bad Request
// without its text; an empty key does too.
func KeyFunc(f func(r *http.Request) (string, error)) Key {
	if f == nil {
		return Key{bad: "KeyFunc with a nil function"}
	}
	return Key{fn: func(_ *Guard, r *http.Request) (string, error) { return f(r) }}
}

// Keys combines keys, e.g. a tenant and a route: the request's key joins
// the parts' keys, each prefixed with its length, so that distinct tuples
// never join to the same key ("ab"+"c" differs from "a"+"bc"). Any part's
// error is the combined key's error.
func Keys(parts ...Key) Key {
	if len(parts) == 0 {
		return Key{bad: "Keys with no parts"}
	}
	for _, p := range parts {
		if msg := p.check(); msg != "" {
			return Key{bad: "Keys: " + msg}
		}
	}
	parts = append([]Key(nil), parts...)
	return Key{fn: func(g *Guard, r *http.Request) (string, error) {
		var arr [128]byte
		buf := arr[:0]
		for _, p := range parts {
			k, err := p.fn(g, r)
			if err != nil {
				return "", err
			}
			buf = strconv.AppendInt(buf, int64(len(k)), 10)
			buf = append(buf, ':')
			buf = append(buf, k...)
		}
		return string(buf), nil
	}}
}

// ipKey is KeyByIP.
func (g *Guard) ipKey(r *http.Request) (string, error) {
	addr, text, ok := parseNode(r.RemoteAddr)
	if !ok {
		if r.RemoteAddr == "" {
			return "", ErrNoClientAddr
		}
		return r.RemoteAddr, nil
	}
	if len(g.trusted) > 0 && g.isTrusted(addr) {
		addr, text = g.walkChain(r, addr, text)
	}
	return g.addrKey(addr, text), nil
}

// addrKey formats the key of a; text, when not empty, is a's canonical
// text, which saves an allocation.
func (g *Guard) addrKey(a netip.Addr, text string) string {
	if a.Is4() {
		if text != "" {
			return text
		}
		return a.String()
	}
	if g.v6Bits < 128 {
		p, _ := a.Prefix(g.v6Bits)
		return p.String()
	}
	return a.String()
}

func (g *Guard) isTrusted(a netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walkChain returns the client address from the forwarding header, given a
// trusted peer: the right-most untrusted entry, or the nearest trusted one
// when an entry is not an address, or the left-most when all are trusted.
func (g *Guard) walkChain(r *http.Request, peer netip.Addr, peerText string) (netip.Addr, string) {
	var arr [16]string
	nodes := arr[:0]
	lines := r.Header[g.proxyHeader]
	switch g.proxyHeader {
	case HeaderXRealIP:
		if len(lines) > 0 {
			nodes = append(nodes, lines[len(lines)-1])
		}
	case HeaderForwarded:
		for _, line := range lines {
			nodes = appendForwardedFor(nodes, line)
		}
	default:
		for _, line := range lines {
			for line != "" {
				i := strings.IndexByte(line, ',')
				if i < 0 {
					nodes = append(nodes, line)
					break
				}
				nodes = append(nodes, line[:i])
				line = line[i+1:]
			}
		}
	}
	last, lastText := peer, peerText
	for i := len(nodes) - 1; i >= 0; i-- {
		a, text, ok := parseNode(strings.Trim(nodes[i], " \t"))
		if !ok {
			return last, lastText
		}
		if !g.isTrusted(a) {
			return a, text
		}
		last, lastText = a, text
	}
	return last, lastText
}

// appendForwardedFor appends the for= node of each element of one
// Forwarded field line (RFC 7239, section 4); an element without one adds
// "", which parses as no address.
func appendForwardedFor(nodes []string, line string) []string {
	for {
		elem, rest, more := cutUnquoted(line, ',')
		node := forwardedFor(elem)
		if strings.Trim(elem, " \t") != "" || more {
			nodes = append(nodes, node)
		}
		if !more {
			return nodes
		}
		line = rest
	}
}

// forwardedFor returns the value of the for parameter of one element,
// unquoted, or "" when it has no usable one.
func forwardedFor(elem string) string {
	for elem != "" {
		pair, rest, _ := cutUnquoted(elem, ';')
		elem = rest
		name, value, ok := strings.Cut(strings.Trim(pair, " \t"), "=")
		if !ok || !strings.EqualFold(strings.TrimRight(name, " \t"), "for") {
			continue
		}
		value = strings.TrimLeft(value, " \t")
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
			if strings.IndexByte(value, '\\') >= 0 {
				return "" // escapes never occur in an address
			}
		}
		return value
	}
	return ""
}

// cutUnquoted cuts s around the first sep outside a quoted string.
func cutUnquoted(s string, sep byte) (before, after string, found bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// parseNode parses an address as it appears in RemoteAddr or a forwarding
// header: "192.0.2.1", "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]" or
// "[2001:db8::1]:80". It returns the address unmapped and without zone and,
// for a plain IPv4 address, its canonical text (a substring of s).
func parseNode(s string) (addr netip.Addr, text string, ok bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		addr = ap.Addr()
		if addr.Is4() {
			text = s[:strings.LastIndexByte(s, ':')]
		}
	} else if a, err := netip.ParseAddr(s); err == nil {
		addr = a
		if addr.Is4() {
			text = s
		}
	} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return netip.Addr{}, "", false
		}
		addr = a
	} else {
		return netip.Addr{}, "", false
	}
	if addr.Is4In6() {
		addr, text = addr.Unmap(), ""
	}
	return addr.WithZone(""), text, true
}
