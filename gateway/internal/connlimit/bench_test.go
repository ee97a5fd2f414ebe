package connlimit

import (
	"net"
	"net/http"
	"testing"
)

// fakeConn is a connection from a given peer that does nothing.
type fakeConn struct {
	net.Conn
	addr *net.TCPAddr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.addr }
func (c fakeConn) Close() error         { return nil }

// What the limiter adds to each request on a kept-alive connection: two
// state changes (active, then idle), with 1,000 other connections idle.
func BenchmarkRequestStates(b *testing.B) {
	l, err := New(Config{Max: 100_000, PerAddress: 256})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		c := l.admit(fakeConn{addr: &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 1}})
		l.ConnState(c, http.StateIdle)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := l.admit(fakeConn{addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}})
		for pb.Next() {
			l.ConnState(c, http.StateActive)
			l.ConnState(c, http.StateIdle)
		}
	})
}

// What the limiter adds to each connection: admitting it (per-address
// group included) and releasing it on close.
func BenchmarkConnection(b *testing.B) {
	l, err := New(Config{Max: 100_000, PerAddress: 256})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		fc := fakeConn{addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}}
		for pb.Next() {
			c := l.admit(fc)
			l.ConnState(c, http.StateNew)
			_ = c.Close()
		}
	})
}
