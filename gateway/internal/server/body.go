package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/framing"
)

const msgTooLarge = "Request body too large"

// bodyBudget counts the bytes of request bodies the gateway holds in
// memory, over all requests: body_buffer_memory bounds it.
type bodyBudget struct{ used atomic.Int64 }

// reserve takes n bytes if the total stays within max.
func (b *bodyBudget) reserve(n, max int64) bool {
	for {
		u := b.used.Load()
		if u+n > max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *bodyBudget) release(n int64) { b.used.Add(-n) }

// bodyLimit enforces max_body_size. A declared length over it is refused
// with 413 at once. A chunked body is read up to body_buffer_size first
// (charged to body_buffer_memory): one that ends there is forwarded whole
// with its length, or refused with 413 without reaching the upstream; a
// longer one streams on with a running count, and the read that passes the
// limit fails, so the upstream connection is cut mid-body (the upstream
// sees an incomplete chunked body, never a complete truncated one) and the
// client gets 413 if the upstream has not answered yet. It runs after the
// lists, bans and rate limits, so only clients let this far make the
// gateway read anything.
func (p *pipeline) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		release, err := p.limitBody(c, v)
		if err != nil {
			return err
		}
		defer release()
		err = next(c)
		if v.bodyOver.Load() {
			v.decision = decisionTooLarge
		}
		return err
	}
}

func noRelease() {}

func (p *pipeline) limitBody(c echo.Context, v *verdict) (release func(), err error) {
	r := c.Request()
	edge := v.rt.cfg.Edge
	max := edge.MaxBodyBytes
	if r.ContentLength > max {
		return noRelease, stop(v, decisionTooLarge, http.StatusRequestEntityTooLarge, msgTooLarge)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return noRelease, nil
	}
	// The server's own writer, so that a body cut at the limit also closes
	// the client's connection after the answer.
	w := c.Response().Writer
	if r.ContentLength >= 0 || p.readsBody(v, r) || p.readsForm(v, r) {
		// A login's body, or a form where roles are checked by method, is
		// read whole later (readBody), with its own bound; reading ahead
		// here would hold it twice.
		r.Body = &flagOverflow{http.MaxBytesReader(w, r.Body, max), &v.bodyOver}
		return noRelease, nil
	}
	n := min(max+1, edge.BodyBufferBytes)
	// Uploads may hold at most half of body_buffer_memory between them, so
	// stalled uploads can never take the logins' share. The read-ahead must
	// arrive within the body's deadline (awaitBody); the rest streams.
	awaitBody(c, v)
	buf, held, rerr := p.g.bodies.readUpTo(r.Body, n, edge.BodyBufferMemory/2)
	release = func() { p.g.bodies.release(held) }
	if bodyLate(rerr) {
		release()
		return noRelease, lateBody(c, v)
	}
	liftBody(c, v, rerr == nil && int64(len(buf)) < n)
	switch {
	case rerr != nil && !errors.Is(rerr, errBudget):
		release()
		return noRelease, stop(v, decisionForbidden, http.StatusBadRequest, "unreadable request body")
	case rerr == nil && int64(len(buf)) < n:
		// The whole body, within the limit (len < n <= max+1).
		if err := refusedFraming(c, v); err != nil {
			release()
			return noRelease, err
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.ContentLength = int64(len(buf))
		r.TransferEncoding = nil
		return release, nil
	case rerr == nil && n > max:
		release()
		return noRelease, stop(v, decisionTooLarge, http.StatusRequestEntityTooLarge, msgTooLarge)
	}
	// Longer than the look-ahead, or no memory to look further: what was
	// read goes first, the rest streams with the count.
	r.Body = &flagOverflow{http.MaxBytesReader(w, struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}, max), &v.bodyOver}
	return release, nil
}

// refusedFraming refuses a request whose chunked body the gateway has read
// whole when the connection's framing scanner refused the request
// meanwhile: its trailer broke the framing rules or took its fields over
// max_header_count (package framing). framing.Guard answers such a request
// when the trailer arrives with the head; arriving later, it is answered
// here, the same way (431 or 400, the connection closed), before the body
// is forwarded.
func refusedFraming(c echo.Context, v *verdict) error {
	status, msg, refused := framing.Refused(c.Request().Context())
	if !refused {
		return nil
	}
	c.Response().Header().Set("Connection", "close")
	decision := decisionBadFraming
	if status == http.StatusRequestHeaderFieldsTooLarge {
		decision = decisionTooManyHeads
	}
	return stop(v, decision, status, msg)
}

// errBudget: body_buffer_memory (or the uploads' share of it) is full.
var errBudget = errors.New("body buffer memory is full")

// readUpTo reads r until EOF or n bytes, growing its buffer as bytes
// arrive and charging each growth to the budget (within max): a client
// that sends one byte and stalls holds one small step, not the whole
// look-ahead. It returns what it read and what it holds; err is nil at
// EOF or n, errBudget when the budget refused a growth (buf holds what was
// read), or the read error.
func (b *bodyBudget) readUpTo(r io.Reader, n, max int64) (buf []byte, held int64, err error) {
	step := min(n, bodyStep)
	if !b.reserve(step, max) {
		return nil, 0, errBudget
	}
	held = step
	buf = make([]byte, 0, step)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grow := min(n, 2*int64(cap(buf))) - int64(cap(buf))
			if !b.reserve(grow, max) {
				return buf, held, errBudget
			}
			held += grow
			buf = append(make([]byte, 0, int64(cap(buf))+grow), buf...)
		}
		k, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if rerr == io.EOF {
			return buf, held, nil
		}
		if rerr != nil {
			return buf, held, rerr
		}
	}
	return buf, held, nil
}

// bodyStep is the first piece of a body the gateway holds, and what a
// stalled client costs the budget.
const bodyStep = 4 << 10

// flagOverflow records that a body passed its limit: the proxy answers
// 413 then, and the request is accounted as too large, not as the
// upstream's answer. Set from the transport's goroutine, hence atomic.
type flagOverflow struct {
	io.ReadCloser
	over *atomic.Bool
}

func (f *flagOverflow) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if err != nil && errors.As(err, &tooLarge) {
		f.over.Store(true)
	}
	return n, err
}

// readsBody reports whether forward will read r's body whole: a login to
// the gateway's auth path or to a guarded login route.
func (p *pipeline) readsBody(v *verdict, r *http.Request) bool {
	if v.login && p.d.Keys != nil {
		return true
	}
	_, guarded := v.paths.logins[v.key]
	return guarded && r.Method == http.MethodPost
}

// readBody reads a body the gateway must see whole (a login's, to read the
// login and password; a form's where roles are checked by method, for
// _method) into memory: at most body_buffer_size (413 above
// it, or the guards could be skipped by padding the body), charged to
// body_buffer_memory (503 while the gateway holds as much as it may).
// release gives the memory back once the body has been forwarded.
func (p *pipeline) readBody(c echo.Context, v *verdict) (body []byte, release func(), err error) {
	r := c.Request()
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, noRelease, nil
	}
	edge := v.rt.cfg.Edge
	limit := edge.BodyBufferBytes
	if r.ContentLength > limit {
		return nil, noRelease, stop(v, decisionTooLarge, http.StatusRequestEntityTooLarge, msgTooLarge)
	}
	n := limit + 1 // chunked: one byte more tells a body over the limit
	if r.ContentLength > 0 {
		n = r.ContentLength
	}
	// The login's body must arrive within the body's deadline
	// (read_header_timeout, awaitBody): a client that stalls mid-body holds
	// its share of the budget no longer.
	awaitBody(c, v)
	buf, held, err := p.g.bodies.readUpTo(r.Body, n, edge.BodyBufferMemory)
	if !bodyLate(err) {
		liftBody(c, v, err == nil && (r.ContentLength > 0 || int64(len(buf)) < n))
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, errBudget):
		c.Response().Header().Set("Retry-After", "1")
		err = stop(v, decisionOverloaded, http.StatusServiceUnavailable, msgDegraded)
	case errors.As(err, &tooLarge):
		err = stop(v, decisionTooLarge, http.StatusRequestEntityTooLarge, msgTooLarge)
	case bodyLate(err):
		err = lateBody(c, v)
	case err != nil:
		err = stop(v, decisionForbidden, http.StatusBadRequest, "unreadable request body")
	case r.ContentLength < 0 && int64(len(buf)) == n: // filled: more than limit
		err = stop(v, decisionTooLarge, http.StatusRequestEntityTooLarge, msgTooLarge)
	case r.ContentLength > 0 && int64(len(buf)) < n:
		err = stop(v, decisionForbidden, http.StatusBadRequest, "unreadable request body")
	case r.ContentLength < 0:
		err = refusedFraming(c, v)
	}
	if err != nil {
		p.g.bodies.release(held)
		return nil, noRelease, err
	}
	return buf, func() { p.g.bodies.release(held) }, nil
}
