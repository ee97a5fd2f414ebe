package framing

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Listen wraps ln: every connection it accepts is a *Conn whose reads are
// scanned. Serve with ConnContext and Guard, and with
// http.Server.DisableGeneralOptionsHandler set, so that every request the
// server reads reaches Guard (the server answers "OPTIONS *" itself
// otherwise, and Guard's count of requests would fall behind).
func Listen(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

// Conn is a connection whose reads pass through a Scanner.
type Conn struct {
	net.Conn
	s      Scanner       // only Read touches it: the server never reads concurrently
	failed atomic.Int64  // 1 + index of the first refused request; 0: none
	reason atomic.Uint32 // why, stored before failed
	served atomic.Int64  // requests Guard has seen on this connection
}

// NetConn returns the connection underneath, as tls.Conn's does: a
// ConnState hook that tracks its own wrapper (package connlimit) finds it
// through this.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Read reads from the connection and scans what it read.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.s.state != sFailed {
		c.s.Feed(p[:n])
		if i, why, failed := c.s.Failed(); failed {
			c.reason.Store(uint32(why))
			c.failed.Store(int64(i) + 1)
		}
	}
	return n, err
}

// next counts a request the server hands over and reports whether it is
// refused: the first refused one and all after it are.
func (c *Conn) next() (Reason, bool) {
	i := c.served.Add(1) - 1
	f := c.failed.Load()
	if f == 0 || i < f-1 {
		return None, false
	}
	return Reason(c.reason.Load()), true
}

// CloseWrite half-closes the connection (the server does before it
// lingers).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the server's sendfile/splice path for response bodies.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

type connKey struct{}

// ConnContext is http.Server.ConnContext: it puts the *Conn on the
// connection's context, where Guard finds it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

// Guard answers a request whose framing its connection's scanner refused,
// and every later request on that connection, with 400 JSON and
// "Connection: close", without reading its body, and closes the connection.
// Other requests go to next, as do requests on connections Listen did not
// accept. refused, when not nil, is told about each refusal.
func Guard(next http.Handler, refused func(*http.Request, Reason)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*Conn)
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		why, bad := c.next()
		if !bad {
			next.ServeHTTP(w, r)
			return
		}
		if refused != nil {
			refused(r, why)
		}
		refuse(w, why)
	})
}

// After a refusal the connection waits this long for the client to close:
// closing at once with unread input sends a reset, which can destroy the
// answer before the client reads it (Go's server waits the same).
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// refuse writes the 400 on the connection itself and closes it: the server
// would otherwise read up to 256 KiB of the refused request's body first.
func refuse(w http.ResponseWriter, why Reason) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(refusal[why].body)
		return
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(lingerTime))
	if _, err := conn.Write(refusal[why].response); err != nil {
		return
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
	var buf [512]byte
	for n := 0; n < lingerBytes; {
		k, err := conn.Read(buf[:])
		if err != nil {
			return
		}
		n += k
	}
}

// refusal holds the answer for each reason, {"error":"Bad request
// framing: …"}, alone and as a whole response.
var refusal = func() (a [numReasons]struct{ body, response []byte }) {
	for r := range a {
		body := `{"error":"Bad request framing: ` + Reason(r).String() + `"}` + "\n"
		a[r].body = []byte(body)
		a[r].response = []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	return a
}()
