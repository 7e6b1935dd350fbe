package limiter

// TakesCellPath reports whether l decides through the one-cell short path
// (internal/onecell), for the tests that compare it with the batch path.
func TakesCellPath(l *Limiter) bool { return l.cellAlg != nil }
