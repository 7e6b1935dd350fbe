package httplimit_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// TestSpoofedForwardingHeaders: without trusted proxies, 1,000 requests
// from one peer with 1,000 different forwarding headers share one limit.
func TestSpoofedForwardingHeaders(t *testing.T) {
	const limit = 10
	for _, header := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		t.Run("header="+header, func(t *testing.T) {
			clk := storetest.NewClock(start)
			lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(limit)), nil, clk)
			h := httplimit.Middleware(lim)(okHandler)
			allowed := 0
			for i := range 1000 {
				forged := fmt.Sprintf("203.0.%d.%d", i/256, i%256)
				if header == "Forwarded" {
					forged = "for=" + forged
				}
				if get(h, "/", "198.51.100.1:5555", header, forged).Code == http.StatusOK {
					allowed++
				}
			}
			if allowed != limit {
				t.Errorf("admitted %d of 1000 spoofed requests; want %d", allowed, limit)
			}
		})
	}
}

// TestKeyByIPChains: with trusted proxies, the key is the right-most
// untrusted address of the chain.
func TestKeyByIPChains(t *testing.T) {
	trusted := httplimit.TrustProxies("10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1")
	tests := []struct {
		name   string
		remote string
		proxy  string // ProxyHeader; "" is the default
		header []string
		want   string
	}{
		{"peer-untrusted-ignores-header", "198.51.100.1:1", "", []string{"X-Forwarded-For", "203.0.113.9"}, "198.51.100.1"},
		{"peer-only", "10.0.0.1:1", "", nil, "10.0.0.1"},
		{"one-hop", "10.0.0.1:1", "", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"client-prepends-forgery", "10.0.0.1:1", "", []string{"X-Forwarded-For", "1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"two-trusted-hops", "10.0.0.1:1", "", []string{"X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.0.0.7"}, "203.0.113.9"},
		{"single-trusted-address", "192.0.2.1:1", "", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"neighbour-of-single-address", "192.0.2.2:1", "", []string{"X-Forwarded-For", "203.0.113.9"}, "192.0.2.2"},
		{"all-trusted", "10.0.0.1:1", "", []string{"X-Forwarded-For", "10.9.9.9, 10.0.0.7"}, "10.9.9.9"},
		{"several-lines", "10.0.0.1:1", "", []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "203.0.113.9, 10.0.0.2"}, "203.0.113.9"},
		{"spaces-and-tabs", "10.0.0.1:1", "", []string{"X-Forwarded-For", " 6.6.6.6 ,\t203.0.113.9 "}, "203.0.113.9"},
		{"garbage-at-client", "10.0.0.1:1", "", []string{"X-Forwarded-For", "6.6.6.6, not-an-ip, 10.0.0.7"}, "10.0.0.7"},
		{"garbage-beyond-client", "10.0.0.1:1", "", []string{"X-Forwarded-For", "garbage, 203.0.113.9"}, "203.0.113.9"},
		{"empty-entry", "10.0.0.1:1", "", []string{"X-Forwarded-For", "6.6.6.6,,"}, "10.0.0.1"},
		{"leading-zero-ipv4", "10.0.0.1:1", "", []string{"X-Forwarded-For", "010.0.0.1"}, "10.0.0.1"},
		{"port", "10.0.0.1:1", "", []string{"X-Forwarded-For", "203.0.113.9:4711"}, "203.0.113.9"},
		{"ipv6-grouped", "10.0.0.1:1", "", []string{"X-Forwarded-For", "2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2::/64"},
		{"ipv6-bracket-port", "10.0.0.1:1", "", []string{"X-Forwarded-For", "[2001:db8:1:2::9]:80"}, "2001:db8:1:2::/64"},
		{"ipv6-trusted-proxy", "[2001:db8:ffff::1]:443", "", []string{"X-Forwarded-For", "2001:db8:1:2::9"}, "2001:db8:1:2::/64"},
		{"ipv4-mapped-peer", "[::ffff:10.0.0.1]:1", "", []string{"X-Forwarded-For", "::ffff:203.0.113.9"}, "203.0.113.9"},
		{"ipv6-zone", "[fe80::1%eth0]:1", "", nil, "fe80::/64"},
		{"forwarded-v6", "10.0.0.1:1", "Forwarded", []string{"Forwarded", `for="[2001:db8::1]:4711"`}, "2001:db8::/64"},
		{"forwarded-chain", "10.0.0.1:1", "Forwarded", []string{"Forwarded", `for=6.6.6.6, for=203.0.113.9;proto=https, for=10.0.0.3;by=10.0.0.1`}, "203.0.113.9"},
		{"forwarded-case-quotes", "10.0.0.1:1", "Forwarded", []string{"Forwarded", `FOR="203.0.113.9";host="a,b;c"`}, "203.0.113.9"},
		{"forwarded-unknown", "10.0.0.1:1", "Forwarded", []string{"Forwarded", `for=6.6.6.6, for=unknown`}, "10.0.0.1"},
		{"forwarded-obfuscated", "10.0.0.1:1", "Forwarded", []string{"Forwarded", `for=6.6.6.6, for=_hidden`}, "10.0.0.1"},
		{"forwarded-no-for", "10.0.0.1:1", "Forwarded", []string{"Forwarded", `for=6.6.6.6, proto=http`}, "10.0.0.1"},
		{"forwarded-ignores-xff", "10.0.0.1:1", "Forwarded", []string{"X-Forwarded-For", "6.6.6.6"}, "10.0.0.1"},
		{"xff-ignores-forwarded", "10.0.0.1:1", "", []string{"Forwarded", "for=6.6.6.6"}, "10.0.0.1"},
		{"real-ip", "10.0.0.1:1", "X-Real-IP", []string{"X-Real-IP", "203.0.113.9"}, "203.0.113.9"},
		{"real-ip-garbage", "10.0.0.1:1", "X-Real-IP", []string{"X-Real-IP", "nope"}, "10.0.0.1"},
		{"real-ip-untrusted-peer", "198.51.100.1:1", "X-Real-IP", []string{"X-Real-IP", "203.0.113.9"}, "198.51.100.1"},
		{"remote-without-port", "10.0.0.1", "", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"unix-socket", "@", "", []string{"X-Forwarded-For", "203.0.113.9"}, "@"},
	}
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, storetest.NewClock(start))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []httplimit.Option{trusted}
			if tt.proxy != "" {
				opts = append(opts, httplimit.ProxyHeader(tt.proxy))
			}
			g, err := httplimit.New(lim, opts...)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			got, err := g.Key(r)
			if err != nil || got != tt.want {
				t.Errorf("Key(RemoteAddr %q, %q) = %q, %v; want %q", tt.remote, tt.header, got, err, tt.want)
			}
		})
	}
}

// TestTrustMappedCIDR: an IPv4-mapped IPv6 range trusts IPv4 proxies.
func TestTrustMappedCIDR(t *testing.T) {
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, storetest.NewClock(start))
	g, err := httplimit.New(lim, httplimit.TrustProxies("::ffff:10.0.0.0/104"))
	if err != nil {
		t.Fatal(err)
	}
	for _, remote := range []string{"10.1.2.3:1", "[::ffff:10.1.2.3]:1"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got, _ := g.Key(r); got != "203.0.113.9" {
			t.Errorf("Key(peer %s) = %q; want 203.0.113.9", remote, got)
		}
	}
}

// TestIPv6Prefix: the prefix length groups IPv6 clients; IPv4 is unaffected.
func TestIPv6Prefix(t *testing.T) {
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, storetest.NewClock(start))
	tests := []struct {
		bits   int
		remote string
		want   string
	}{
		{64, "[2001:db8:1:2:3:4:5:6]:1", "2001:db8:1:2::/64"},
		{48, "[2001:db8:1:2:3:4:5:6]:1", "2001:db8:1::/48"},
		{128, "[2001:db8:1:2:3:4:5:6]:1", "2001:db8:1:2:3:4:5:6"},
		{0, "[2001:db8:1:2:3:4:5:6]:1", "::/0"},
		{48, "203.0.113.9:1", "203.0.113.9"},
	}
	for _, tt := range tests {
		g, err := httplimit.New(lim, httplimit.IPv6Prefix(tt.bits))
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		if got, _ := g.Key(r); got != tt.want {
			t.Errorf("IPv6Prefix(%d): Key(%s) = %q; want %q", tt.bits, tt.remote, got, tt.want)
		}
	}
}

// TestKeyByHeader: the header keys; a missing one falls back to the client
// address under a key no header can forge.
func TestKeyByHeader(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk)
	g, err := httplimit.New(lim, httplimit.KeyByHeader("x-tenant-id"))
	if err != nil {
		t.Fatal(err)
	}
	key := func(tenant string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:1"
		if tenant != "" {
			r.Header.Set("X-Tenant-ID", tenant)
		}
		k, err := g.Key(r)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if got := key("acme"); got != "acme" {
		t.Errorf("key with header = %q; want acme", got)
	}
	fallback := key("")
	if fallback == "192.0.2.1" || fallback == "" || fallback == key("192.0.2.1") {
		t.Errorf("fallback key %q can be forged with a header", fallback)
	}

	// Through the middleware: tenant and anonymous limits are separate.
	h := g.Wrap(okHandler)
	codes := []int{
		get(h, "/", "192.0.2.1:1", "X-Tenant-ID", "acme").Code,
		get(h, "/", "192.0.2.1:1").Code,
		get(h, "/", "192.0.2.1:1", "X-Tenant-ID", "acme").Code,
		get(h, "/", "192.0.2.1:1").Code,
		get(h, "/", "192.0.2.2:1").Code,
	}
	if want := []int{200, 200, 429, 429, 200}; !equalInts(codes, want) {
		t.Errorf("statuses = %v; want %v", codes, want)
	}
}

// TestKeysCombined: combined keys are unambiguous and propagate errors.
func TestKeysCombined(t *testing.T) {
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, storetest.NewClock(start))
	part := func(name string) httplimit.Key {
		return httplimit.KeyFunc(func(r *http.Request) (string, error) { return r.Header.Get(name), nil })
	}
	g, err := httplimit.New(lim, httplimit.Keys(part("A"), part("B")))
	if err != nil {
		t.Fatal(err)
	}
	key := func(a, b string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("A", a)
		r.Header.Set("B", b)
		k, err := g.Key(r)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	seen := map[string][2]string{}
	for _, p := range [][2]string{{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}, {"1:a", "b"}, {"1", "a1:b"}} {
		k := key(p[0], p[1])
		if prev, dup := seen[k]; dup {
			t.Errorf("parts %q and %q both give key %q", prev, p, k)
		}
		seen[k] = p
	}

	boom := errors.New("boom")
	g, err = httplimit.New(lim, httplimit.Keys(httplimit.KeyByIP(), httplimit.KeyFunc(func(*http.Request) (string, error) { return "", boom })))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Key(httptest.NewRequest(http.MethodGet, "/", nil)); !errors.Is(err, boom) {
		t.Errorf("Key with a failing part: %v; want boom", err)
	}
}

// FuzzKeyByIP: no header makes the key function fail or panic, and the key
// is always the peer, an address from the header, or an IPv6 prefix.
func FuzzKeyByIP(f *testing.F) {
	for _, seed := range [][2]string{
		{"X-Forwarded-For", "203.0.113.9, 10.0.0.7"},
		{"X-Forwarded-For", ",,,[::1]:80, garbage"},
		{"Forwarded", `for="[2001:db8::1]:4711";proto=https, for=unknown`},
		{"Forwarded", `for="\"x, for=1.2.3.4`},
		{"X-Real-IP", "::ffff:203.0.113.9"},
	} {
		f.Add(seed[0], seed[1])
	}
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { lim.Close() })
	guards := map[string]*httplimit.Guard{}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		g, err := httplimit.New(lim, httplimit.TrustProxies("10.0.0.0/8", "2001:db8::/32"), httplimit.ProxyHeader(h))
		if err != nil {
			f.Fatal(err)
		}
		guards[h] = g
	}
	f.Fuzz(func(t *testing.T, header, value string) {
		for name, g := range guards {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "10.0.0.1:1"
			r.Header[http.CanonicalHeaderKey(header)] = []string{value}
			key, err := g.Key(r)
			if err != nil || key == "" {
				t.Fatalf("%s: Key(%s: %q) = %q, %v", name, header, value, key, err)
			}
			if _, perr := netip.ParseAddr(key); perr != nil {
				if _, perr := netip.ParsePrefix(key); perr != nil {
					t.Fatalf("%s: Key(%s: %q) = %q, neither address nor prefix", name, header, value, key)
				}
			}
		}
	})
}
