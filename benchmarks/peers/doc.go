// Package peers runs floodgate side by side with other Go rate limiters in
// one go test -bench invocation. It is a module of its own so that the
// libraries it compares against are never requirements of floodgate.
package peers
