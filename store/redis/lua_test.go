package redis

import (
	"context"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
)

// intProbe runs the luaInt helpers on its arguments: ARGV[1], ARGV[2]
// integers, ARGV[3] a weight in ppm.
var intProbe = goredis.NewScript(luaInt + `
local a, b = int(ARGV[1]), int(ARGV[2])
return {int_str(a), int_str(int_add(a, b)), int_le(a, b) and 1 or 0,
        int_str(int_weighted(a, tonumber(ARGV[3])))}
`)

// TestLuaInt checks the script's exact arithmetic against math/big on the
// values that break doubles: around 2^53, around 1.9e18, the int64 bounds,
// and random ones.
func TestLuaInt(t *testing.T) {
	c, _, _ := redistest.Client(t)
	edge := []int64{0, 1, -1, 999_999_999, 1_000_000_000, -999_999_999, -1_000_000_000, -1_000_000_001,
		1<<53 - 1, 1 << 53, 1<<53 + 1, -(1 << 53) - 1, 1_900_000_000_000_000_001, 1_799_999_999_999_999_999,
		math.MaxInt64, math.MaxInt64 - 1, math.MinInt64, math.MinInt64 + 1, 123_456_789_012_345_678}
	rng := rand.New(rand.NewPCG(1, 2))
	type tc struct{ a, b, ppm int64 }
	var cases []tc
	for _, a := range edge {
		for _, b := range edge {
			cases = append(cases, tc{a, b, rng.Int64N(1_000_001)})
		}
		cases = append(cases, tc{a, a, 1_000_000}, tc{a, -a, 0}, tc{a, 1, 999_999})
	}
	for range 300 {
		cases = append(cases, tc{int64(rng.Uint64()), int64(rng.Uint64()) >> rng.IntN(64), rng.Int64N(1_000_001)})
	}
	for _, tt := range cases {
		got, err := intProbe.Run(context.Background(), c, nil,
			strconv.FormatInt(tt.a, 10), strconv.FormatInt(tt.b, 10), tt.ppm).Slice()
		if err != nil {
			t.Fatalf("probe(%d, %d): %v", tt.a, tt.b, err)
		}
		sum := new(big.Int).Add(big.NewInt(tt.a), big.NewInt(tt.b))
		le := int64(0)
		if tt.a <= tt.b {
			le = 1
		}
		want := []any{strconv.FormatInt(tt.a, 10), sum.String(), le, strconv.FormatInt(store.Weighted(tt.a, tt.ppm), 10)}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("lua int(%d) op %d with b=%d ppm=%d = %v; want %v", tt.a, i, tt.b, tt.ppm, got[i], want[i])
			}
		}
	}
}

// TestParseID checks the decoding of stream IDs to Unix ns.
func TestParseID(t *testing.T) {
	tests := []struct {
		id   string
		want int64
	}{
		{"", 0},
		{"0-1", 0},
		{"1764244800000-1", 1_764_244_800_000_000_000},
		{"1764244800000-999999000000007", 1_764_244_800_000_999_999},
		{"1900000000000-1000000001", 1_900_000_000_000_000_001},
	}
	for _, tt := range tests {
		got, err := parseID(tt.id)
		if err != nil || got != tt.want {
			t.Errorf("parseID(%q) = %d, %v; want %d", tt.id, got, err, tt.want)
		}
	}
	for _, bad := range []any{"12", "a-1", "1-b", 7} {
		if _, err := parseID(bad); err == nil {
			t.Errorf("parseID(%v) = nil error; want one", bad)
		}
	}
}
