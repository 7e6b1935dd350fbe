// Package redistest holds test helpers for code that talks to Redis through
// go-redis v9: clients for tests (miniredis by default, the real Redis at
// REDIS_ADDR when that is set, the cluster at REDIS_CLUSTER_ADDRS) with a
// [redisstats.Counter] hooked in, unique key prefixes and their cleanup, and
// throwaway redis-server processes. Measuring what a client sends and what
// the server runs (the hook, INFO commandstats) is package redisstats's.
//
// It is imported by tests only.
package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redisstats"
)

// Addr returns the address of the real Redis to test against, from the
// REDIS_ADDR environment variable, or "" when it is not set.
func Addr() string { return os.Getenv("REDIS_ADDR") }

// NeedAddr returns REDIS_ADDR or skips the test, naming the variable.
func NeedAddr(t testing.TB) string {
	t.Helper()
	addr := Addr()
	if addr == "" {
		t.Skip("REDIS_ADDR not set: skipping test against a real Redis")
	}
	return addr
}

// ClusterAddrs returns the seed addresses of the Redis Cluster to test
// against, from REDIS_CLUSTER_ADDRS (comma-separated), or nil.
func ClusterAddrs() []string {
	v := os.Getenv("REDIS_CLUSTER_ADDRS")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Options returns the client options this project recommends (see
// docs/stores.md), for addr: context deadlines honoured, no retry of a
// command whose reply may have been lost, one dial attempt per connection
// (a refused connection fails at once). Read and write timeouts are a
// generous 10 s: miniredis runs scripts slowly under the race detector, and
// tests that need a bound pass a context deadline.
func Options(addr string) *goredis.Options {
	return &goredis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           time.Second,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
	}
}

// Client returns a client for one test, with a redisstats.Counter hooked
// in, and closes it in t.Cleanup. It talks to the real Redis at REDIS_ADDR
// when that is set, and otherwise to a fresh miniredis (returned too, nil
// for a real Redis) so that tests can move its clock.
func Client(t testing.TB) (goredis.UniversalClient, *redisstats.Counter, *miniredis.Miniredis) {
	t.Helper()
	var mr *miniredis.Miniredis
	addr := Addr()
	if addr == "" {
		mr = miniredis.RunT(t)
		addr = mr.Addr()
	}
	c := goredis.NewClient(Options(addr))
	t.Cleanup(func() { _ = c.Close() })
	cnt := new(redisstats.Counter)
	c.AddHook(cnt)
	return c, cnt, mr
}

// ClusterClient returns a cluster client for REDIS_CLUSTER_ADDRS, with the
// settings of Options and a redisstats.Counter hooked in, or skips the test
// when the variable is not set.
func ClusterClient(t testing.TB) (*goredis.ClusterClient, *redisstats.Counter) {
	t.Helper()
	addrs := ClusterAddrs()
	if len(addrs) == 0 {
		t.Skip("REDIS_CLUSTER_ADDRS not set: skipping test against a Redis Cluster")
	}
	o := Options("")
	c := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		MaxRetries:            o.MaxRetries,
		DialerRetries:         o.DialerRetries,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
	})
	t.Cleanup(func() { _ = c.Close() })
	cnt := new(redisstats.Counter)
	c.AddHook(cnt)
	return c, cnt
}

var prefixSeq atomic.Int64

var runID = rand.Uint32()

// Prefix returns a key prefix that no other test, and no other run of the
// suite, uses on a shared Redis: "test:<run>:<seq>:".
func Prefix(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("test:%08x:%d:", runID, prefixSeq.Add(1))
}

// Server is a throwaway redis-server process on a local port, with no
// persistence. Start it with StartServer.
type Server struct {
	Port int    // the port it listens on, on 127.0.0.1
	Addr string // "127.0.0.1:<port>"

	t   testing.TB
	dir string
	cmd *exec.Cmd
}

// StartServer starts redis-server on 127.0.0.1:port, waits until it
// answers PING, and stops it in t.Cleanup. When port is 0 or already taken
// (another test run on the same machine), a free port is picked instead:
// read the address from the Server. The test is skipped if redis-server is
// not installed.
func StartServer(t testing.TB, port int) *Server {
	t.Helper()
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil && port != 0 {
		ln.Close()
	} else {
		if err == nil {
			ln.Close()
		}
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: no free port: %v", err)
		}
		port = free.Addr().(*net.TCPAddr).Port
		free.Close()
	}
	s := &Server{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t, dir: t.TempDir()}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again after Stop or Kill, on the same port.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("redistest: server on %s already running", s.Addr)
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		// CI installs it (.ci/run); a bare machine may not have it.
		s.t.Skipf("redistest: redis-server not installed, so this test cannot start one: %v", err)
	}
	cmd := exec.Command(path,
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server on %s: %v", s.Addr, err)
	}
	s.cmd = cmd
	// Bounded polling for the server to come up: this is a real process.
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			// The server answering must be ours, not another process's on a
			// port this test should not have picked.
			want := "process_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
			if !strings.Contains(info, want) {
				s.Stop()
				s.t.Fatalf("redistest: another redis-server answers on %s; pick another port", s.Addr)
			}
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("redistest: redis-server on %s did not answer PING within 5s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server, if running, and waits for it to exit. It is
// idempotent.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the server process with SIGSTOP: connections stay open but
// nothing is answered, as with a hung server. Resume undoes it; Stop works
// on a paused server.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("redistest: pause %s: %v", s.Addr, err)
	}
}

// Resume continues a paused server.
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("redistest: resume %s: %v", s.Addr, err)
	}
}

func (s *Server) signal(sig os.Signal) error {
	if s.cmd == nil {
		return fmt.Errorf("not running")
	}
	return s.cmd.Process.Signal(sig)
}

// CleanupPrefix deletes, in t.Cleanup, every key that starts with prefix
// (with [redisstats.DeletePrefix], on every master of a cluster), so that
// tests leave nothing behind on a shared Redis. Keys whose names start with
// prefix must belong to the test. It does nothing on a miniredis that is
// gone.
func CleanupPrefix(t testing.TB, c goredis.UniversalClient, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := redisstats.DeletePrefix(ctx, c, prefix); err != nil && Addr() != "" {
			t.Logf("redistest: cleanup: %v", err)
		}
	})
}
