package redisstats

import (
	"errors"
	"maps"
	"strconv"
	"testing"
)

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_incr:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_EVALSHA:calls=7,usec=70,usec_per_call=10.00\r\n" +
		"cmdstat_info:calls=1,usec=5\r\n" +
		// Lines of other sections, should a caller pass them, are not
		// commands, whatever their fields.
		"redis_version:7.0.15\r\n" +
		"errorstat_ERR:count=1\r\n" +
		"calls:calls=9\r\n" +
		"\r\n"
	got, err := parseCommandStats(info)
	if err != nil {
		t.Fatalf("parseCommandStats: %v", err)
	}
	want := map[string]int64{"incr": 12, "client|setinfo": 2, "evalsha": 7, "info": 1}
	if !maps.Equal(got, want) {
		t.Errorf("parseCommandStats = %v; want %v", got, want)
	}
	if got, err := parseCommandStats(""); err != nil || len(got) != 0 {
		t.Errorf(`parseCommandStats("") = %v, %v; want empty, nil`, got, err)
	}
	for _, bad := range []string{"cmdstat_get:calls=x,usec=1\r\n", "cmdstat_get:usec=1,calls=\r\n"} {
		_, err := parseCommandStats(bad)
		if !errors.Is(err, strconv.ErrSyntax) {
			t.Errorf("parseCommandStats(%q) = %v; want a syntax error", bad, err)
		}
	}
}

func TestDeltaAndTotal(t *testing.T) {
	before := map[string]int64{"get": 3, "incr": 2, "info": 1, "del": 4}
	after := map[string]int64{"get": 5, "incr": 2, "info": 9, "del": 4, "evalsha": 2}
	d := Delta(before, after)
	if want := map[string]int64{"get": 2, "evalsha": 2}; !maps.Equal(d, want) {
		t.Errorf("Delta = %v; want %v (INFO and unchanged counts left out)", d, want)
	}
	if got := Total(d); got != 4 {
		t.Errorf("Total(%v) = %d; want 4", d, got)
	}
	if got := Total(nil); got != 0 {
		t.Errorf("Total(nil) = %d; want 0", got)
	}
	if got := Delta(nil, map[string]int64{"get": 1}); !maps.Equal(got, map[string]int64{"get": 1}) {
		t.Errorf("Delta(nil, get:1) = %v; want get:1", got)
	}
}

func TestGlobEscape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"test:1:", "test:1:"},
		{"a*b?c[d]e\\f", `a\*b\?c\[d\]e\\f`},
		{"", ""},
	} {
		if got := globEscape(tt.in); got != tt.want {
			t.Errorf("globEscape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
