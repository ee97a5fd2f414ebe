package framing

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Listen wraps ln: every connection it accepts is a *Conn whose reads are
// scanned with o's limits. Serve with ConnContext and Guard, and with
// http.Server.DisableGeneralOptionsHandler set, so that every request the
// server reads reaches Guard (the server answers "OPTIONS *" itself
// otherwise, and Guard's count of requests would fall behind).
func Listen(ln net.Listener, o Options) net.Listener {
	return listener{ln, &limits{maxFields: o.MaxFields, tooMany: newAnswer(TooManyFields, tooManyMessage(o.MaxFields))}}
}

// Options are the limits a listener's connections are scanned with.
type Options struct {
	// MaxFields bounds the field lines of a request, its head's and its
	// chunked trailer's together (Scanner.MaxFields); 0: no bound. A head
	// with more is cut where the first field over the bound begins, so the
	// server never parses more than MaxFields of them, and Guard answers
	// it 431.
	MaxFields int
}

// limits are a listener's Options with the answer that names them.
type limits struct {
	maxFields int
	tooMany   answer
}

type listener struct {
	net.Listener
	lim *limits
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &Conn{Conn: c, lim: l.lim}
	fc.s.MaxFields = l.lim.maxFields
	return fc, nil
}

// Conn is a connection whose reads pass through a Scanner.
type Conn struct {
	net.Conn
	s      Scanner // only Read touches it: the server never reads concurrently
	lim    *limits
	tail   string        // the rest of the CRLF that ends a head cut short
	failed atomic.Int64  // 1 + index of the first refused request; 0: none
	reason atomic.Uint32 // why, stored before failed
	served atomic.Int64  // requests Guard has seen on this connection
}

// NetConn returns the connection underneath, as tls.Conn's does: a
// ConnState hook that tracks its own wrapper (package connlimit) finds it
// through this.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Read reads from the connection and scans what it read. When a head has
// more fields than the bound, the head is ended where the first field over
// it begins (see cutHead).
func (c *Conn) Read(p []byte) (int, error) {
	if c.tail != "" {
		n := copy(p, c.tail)
		c.tail = c.tail[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.s.state != sFailed {
		base := c.s.off
		c.s.Feed(p[:n])
		if i, why, failed := c.s.Failed(); failed {
			c.reason.Store(uint32(why))
			c.failed.Store(int64(i) + 1)
			if why == TooManyFields && c.s.cut > 0 {
				return c.cutHead(p, int(c.s.cut-base)), nil
			}
		}
	}
	return n, err
}

// cutHead ends the head in p at k, where the first field over the bound
// begins, with the empty line: the server parses a head of MaxFields fields
// and hands the request to Guard, which refuses it (the request is
// flagged), instead of building the map of every field it was sent. What
// followed k in p is dropped; nothing after it is ever read as a request.
func (c *Conn) cutHead(p []byte, k int) int {
	const end = "\r\n"
	m := copy(p[k:], end)
	c.tail = end[m:]
	return k + m
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
// and every later request on that connection, with JSON and "Connection:
// close" (431 for too many header fields, 400 for the rest: Status),
// without reading its body, and closes the connection.
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
		refuse(w, c.answer(why))
	})
}

// Status is the HTTP status a request refused for r is answered with: 431
// for too many header fields, 400 for the rest.
func (r Reason) Status() int {
	if r == TooManyFields {
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return http.StatusBadRequest
}

// Refused reports whether the scanner of ctx's connection (ConnContext)
// refused the request being served on it after the server had handed it
// over: a chunked body's trailer broke the rules or took the request's
// fields over the bound. msg is what Guard would have answered, the JSON
// body's "error", with status. The server serves one request at a time on a
// connection, so the request being served is the last one Guard let
// through. A handler that has read a chunked body whole asks before it
// forwards the body.
func Refused(ctx context.Context) (status int, msg string, refused bool) {
	c, _ := ctx.Value(connKey{}).(*Conn)
	if c == nil {
		return 0, "", false
	}
	f := c.failed.Load()
	if f == 0 || c.served.Load() < f {
		return 0, "", false
	}
	why := Reason(c.reason.Load())
	return why.Status(), c.answer(why).msg, true
}

// answer is the refusal for why on this connection.
func (c *Conn) answer(why Reason) *answer {
	if why == TooManyFields && c.lim != nil {
		return &c.lim.tooMany
	}
	return &refusal[why]
}

// After a refusal the connection waits this long for the client to close:
// closing at once with unread input sends a reset, which can destroy the
// answer before the client reads it (Go's server waits the same).
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// refuse writes the answer on the connection itself and closes it: the
// server would otherwise read up to 256 KiB of the refused request's body
// first.
func refuse(w http.ResponseWriter, a *answer) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
		return
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(lingerTime))
	if _, err := conn.Write(a.response); err != nil {
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

// answer is a refusal: its message, its JSON body {"error":msg} and the
// whole response.
type answer struct {
	status         int
	msg            string
	body, response []byte
}

func newAnswer(why Reason, msg string) answer {
	body, _ := json.Marshal(map[string]string{"error": msg})
	body = append(body, '\n')
	status := why.Status()
	return answer{status: status, msg: msg, body: body, response: []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) +
		"\r\nContent-Type: application/json\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))}
}

// tooManyMessage names the bound on header fields.
func tooManyMessage(max int) string {
	return "Too many header fields: at most " + strconv.Itoa(max)
}

// refusal holds the answer for each reason, "Bad request framing: …"; a
// listener names its own bound on header fields (limits.tooMany).
var refusal = func() (a [numReasons]answer) {
	for r := range a {
		a[r] = newAnswer(Reason(r), "Bad request framing: "+Reason(r).String())
	}
	return a
}()
