package store

import (
	"strconv"
	"strings"
)

// Key names one cell or log in a store.
//
// Namespace identifies the limiter, algorithm and period the state belongs
// to (the limiter builds it from WithPrefix, the algorithm and the limit's
// period); Caller is the caller's key, which may hold any bytes; Window is the
// index of a time window for windowed counters and 0 otherwise. Distinct Keys
// are distinct cells in every store, and their encodings never collide.
//
// Key is comparable and is used as a map key by in-process stores.
type Key struct {
	// Namespace separates limiters and limits sharing a store.
	Namespace string
	// Caller is the key the limit applies to (a tenant, a client address).
	Caller string
	// Window is a windowed counter's window index, else 0.
	Window int64
}

// String returns the encoding of k, as [Key.Append] does.
func (k Key) String() string {
	return string(k.Append(make([]byte, 0, len(k.Namespace)+len(k.Caller)+24)))
}

// Append appends the collision-free encoding of k to dst and returns the
// extended buffer:
//
//	escape(Namespace) "{" escape(Caller) "}" ":" Window
//
// escape percent-encodes '%', '{', '}', bytes below '!' and bytes from 0x7f,
// so the first '{' opens the hash tag, the first '}' after it closes it, and
// every key of one caller shares the Redis Cluster hash tag {escape(Caller)}.
// Distinct Keys never have equal encodings; [ParseKey] inverts it.
func (k Key) Append(dst []byte) []byte {
	dst = appendEscaped(dst, k.Namespace)
	dst = append(dst, '{')
	dst = appendEscaped(dst, k.Caller)
	dst = append(dst, '}', ':')
	return strconv.AppendInt(dst, k.Window, 10)
}

// HashTag returns the Redis Cluster hash tag shared by every key of caller,
// braces included.
func HashTag(caller string) string {
	return string(append(appendEscaped([]byte{'{'}, caller), '}'))
}

// ParseKey decodes an encoding made by [Key.Append].
func ParseKey(s string) (Key, error) {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return Key{}, ErrBadKey
	}
	rest := s[open+1:]
	closing := strings.IndexByte(rest, '}')
	if closing < 0 || closing+1 >= len(rest) || rest[closing+1] != ':' {
		return Key{}, ErrBadKey
	}
	ns, ok := unescape(s[:open])
	if !ok {
		return Key{}, ErrBadKey
	}
	caller, ok := unescape(rest[:closing])
	if !ok {
		return Key{}, ErrBadKey
	}
	digits := rest[closing+2:]
	w, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strconv.FormatInt(w, 10) != digits {
		return Key{}, ErrBadKey
	}
	return Key{Namespace: ns, Caller: caller, Window: w}, nil
}

// Escape returns s with the bytes that Key encodings reserve percent-encoded.
// Limiters use it to build namespaces from user-supplied prefixes.
func Escape(s string) string {
	for i := 0; i < len(s); i++ {
		if mustEscape(s[i]) {
			return string(appendEscaped(make([]byte, 0, len(s)+8), s))
		}
	}
	return s
}

const hexDigits = "0123456789ABCDEF"

func mustEscape(c byte) bool {
	return c < '!' || c >= 0x7f || c == '%' || c == '{' || c == '}'
}

func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEscape(c) {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		for i := 0; i < len(s); i++ {
			if mustEscape(s[i]) {
				return "", false
			}
		}
		return s, true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if mustEscape(c) {
				return "", false
			}
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, lo := strings.IndexByte(hexDigits, s[i+1]), strings.IndexByte(hexDigits, s[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		b := byte(hi<<4 | lo)
		if !mustEscape(b) {
			return "", false // canonical encodings escape only reserved bytes
		}
		out = append(out, b)
		i += 2
	}
	return string(out), true
}
