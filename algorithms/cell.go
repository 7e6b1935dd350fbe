package algorithms

import "github.com/floodgate-go/floodgate/internal/onecell"

// The limiter's short path (internal/onecell) for the algorithms whose
// decision under one limit is one Add: fixed window, sliding window and
// token bucket. Exact types only: a type embedding one of them may
// override Plan or Decide.
func init() {
	onecell.RegisterAlgorithm(func(alg any) (onecell.Algorithm, bool) {
		switch a := alg.(type) {
		case *Fixed:
			return (*fixedCell)(a), true
		case *Sliding:
			return (*slidingCell)(a), true
		case *Bucket:
			return (*bucketCell)(a), true
		}
		return nil, false
	})
}
