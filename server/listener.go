package server

import (
	"net"
	"sync"
)

// limitListener accepts at most n connections at once; further ones wait in
// the kernel's accept queue until one closes. Unlike x/net's netutil, its
// TCP connections stay *net.TCPConn underneath, so that net/http still
// answers GETs with sendfile (a wrapped conn costs a quarter of GET
// throughput: every byte is copied through user space).
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func newLimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	release := sync.OnceFunc(func() { <-l.sem })
	if tc, ok := c.(*net.TCPConn); ok {
		return &limitedTCPConn{TCPConn: tc, release: release}, nil
	}
	return &limitedConn{Conn: c, release: release}, nil
}

// limitedTCPConn embeds the *net.TCPConn itself, so that its ReadFrom
// (sendfile, splice) and WriteTo are still there for net/http to find.
type limitedTCPConn struct {
	*net.TCPConn
	release func()
}

func (c *limitedTCPConn) Close() error {
	defer c.release()
	return c.TCPConn.Close()
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	defer c.release()
	return c.Conn.Close()
}
