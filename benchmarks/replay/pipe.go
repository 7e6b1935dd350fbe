package main

import (
	"io"
	"net"
	"sync"
	"time"
)

// bufPipe returns the two ends of an in-memory, full-duplex connection whose
// writes never block (net.Pipe's do, which deadlocks a pipelining client
// against a server that answers each command as it reads it). Deadlines are
// accepted and ignored: both ends live in this process.
func bufPipe() (net.Conn, net.Conn) {
	a, b := newPipeBuf(), newPipeBuf()
	return &pipeConn{r: a, w: b}, &pipeConn{r: b, w: a}
}

type pipeBuf struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	closed bool
}

func newPipeBuf() *pipeBuf {
	p := &pipeBuf{}
	p.cond.L = &p.mu
	return p
}

func (p *pipeBuf) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	if len(p.buf) == 0 {
		p.buf = p.buf[:0:0] // let a large buffer go
	}
	return n, nil
}

func (p *pipeBuf) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, io.ErrClosedPipe
	}
	p.buf = append(p.buf, b...)
	p.cond.Signal()
	return len(b), nil
}

func (p *pipeBuf) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

type pipeConn struct{ r, w *pipeBuf }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func (c *pipeConn) Read(b []byte) (int, error)  { return c.r.read(b) }
func (c *pipeConn) Write(b []byte) (int, error) { return c.w.write(b) }
func (c *pipeConn) Close() error {
	c.r.close()
	c.w.close()
	return nil
}
func (c *pipeConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }
