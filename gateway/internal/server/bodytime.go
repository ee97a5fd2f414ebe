package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Deadlines on the bodies the gateway waits for itself. It reads some
// bodies before it forwards them (a login's, the head of a POST to a
// sensitive path, a chunked upload's read-ahead), and Go's server reads
// what is left of a refused request's body (up to 256 KiB) before it
// answers. Each such wait has the connection's read deadline:
// read_header_timeout from the first wait of the request, one deadline for
// all its waits. A body that misses it is answered 408 and its connection
// closed. A body handed to the upstream streams instead, under the route's
// timeout (proxy).
//
// The deadline is lifted as soon as a wait ends in time: once a body has
// been read to its end, Go's server reads the connection in the background
// for the next request, and a deadline passing under that read would cancel
// the context of every later request on the connection.

const msgBodyLate = "request body not received in time"

// awaitBody sets the connection's read deadline before the gateway waits
// for the request's body; not for a body read to its end (a deadline there
// could pass under the server's background read).
func awaitBody(c echo.Context, v *verdict) {
	if v.bodyDone {
		return
	}
	if v.bodyBy.IsZero() {
		v.bodyBy = time.Now().Add(v.rt.cfg.Edge.ReadHeaderTimeout)
	}
	_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(v.bodyBy)
}

// liftBody lifts the deadline after a wait that ended in time; whole: the
// body was read to its end, and is waited for no more.
func liftBody(c echo.Context, v *verdict, whole bool) {
	_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Time{})
	v.bodyDone = v.bodyDone || whole
}

// bodyLate reports whether a read failed at the deadline. The deadline is
// then left in place: every later read fails at once, so that Go's server,
// which would read the rest of the body before closing, gives up at once.
func bodyLate(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// lateBody answers a body that missed its deadline: 408, and the
// connection is closed (the rest of the body is never read).
func lateBody(c echo.Context, v *verdict) error {
	c.Response().Header().Set("Connection", "close")
	return stop(v, decisionBodyLate, http.StatusRequestTimeout, msgBodyLate)
}

// maxDrain is how much of a refused request's body is read so that its
// connection can serve the next request: Go's server reads as much
// (maxPostHandlerReadBytes).
const maxDrain = 256 << 10

// drainBody runs before the gateway answers a request it refused without
// reading its body (body is the request's body as the server made it):
// what is left of it is read and dropped within the body's deadline, as Go's
// server would read it without one, so that a client dripping the body of
// a refused request holds its connection no longer than read_header_timeout.
// A body that does not end within maxDrain or the deadline gets its
// answer with "Connection: close", and its connection is closed.
func drainBody(c echo.Context, v *verdict, body io.Reader) {
	r := c.Request()
	if v.bodyDone || body == nil || body == http.NoBody || r.ContentLength == 0 {
		return
	}
	// A client waiting for "100 Continue" has not sent the body: reading
	// would ask for it. Go's server closes such a connection instead.
	if r.ContentLength <= maxDrain && !(v.bodyBy.IsZero() && expectsContinue(r)) {
		awaitBody(c, v)
		if _, err := io.CopyN(io.Discard, body, maxDrain+1); err == io.EOF {
			liftBody(c, v, true)
			return
		}
	}
	// Too long, late or unreadable: the connection is closed after the
	// answer, and Go's server, which would read up to 256 KiB more first,
	// finds the deadline passed.
	c.Response().Header().Set("Connection", "close")
	_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(aLongTimeAgo)
}

func expectsContinue(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Expect"), "100-continue")
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)
