package limiter

import "errors"

// Errors returned by the limiter. Errors from the store are returned wrapped
// (see the store package's ErrUnavailable and ErrClosed).
var (
	// ErrInvalidLimit reports a limit with a non-positive count or period, a
	// negative burst, two limits with the same period, or a set of limits the
	// algorithm cannot take.
	ErrInvalidLimit = errors.New("limiter: invalid limit")

	// ErrInvalidN reports a request for n <= 0 units, or for more units than
	// the limit can ever admit at once (a silent deny would hide the bug).
	ErrInvalidN = errors.New("limiter: invalid n")

	// ErrEmptyKey reports an empty caller key.
	ErrEmptyKey = errors.New("limiter: empty key")

	// ErrKeyTooLong reports a caller key longer than MaxKeyLen bytes.
	ErrKeyTooLong = errors.New("limiter: key too long")

	// ErrInvalidOption reports a nil algorithm, store, clock or limit function.
	ErrInvalidOption = errors.New("limiter: invalid option")

	// ErrClockRange reports a clock (WithClock) that read an instant before
	// 1970 or from 2116-02-20 on, outside the range in which instants and
	// periods in int64 Unix nanoseconds add up without overflow; the zero
	// time.Time is one. A fake clock should start at a real date.
	ErrClockRange = errors.New("limiter: clock out of range")
)

// MaxKeyLen is the longest caller key accepted, in bytes.
const MaxKeyLen = 4096
