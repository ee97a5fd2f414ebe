package admin

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// ReadTimeout is how long the admin API waits for a request's head (the
// server's ReadHeaderTimeout) and, once the head is read, for its body.
const ReadTimeout = 5 * time.Second

// maxDrain is how much of a body no handler read is read and dropped so
// that the connection can serve the next request: as much as Go's server
// would read (maxPostHandlerReadBytes).
const maxDrain = 256 << 10

// bodyDeadline gives a request's body the connection's read deadline:
// ReadTimeout from the moment its head was handed over. A handler reading
// a body that misses it (decode, the pre-auth check's Bind) is answered
// 408; the part of a body no handler read (a refused request's) is read
// and dropped within the same deadline, and the connection is closed when
// it does not end in time. Without it Go's server reads up to 256 KiB of a
// refused request's body with no deadline before it answers.
func bodyDeadline(timeout time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				return next(c)
			}
			rc := http.NewResponseController(c.Response().Writer)
			if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
				return next(c) // not a connection (a test's recorder)
			}
			b := &timedBody{ReadCloser: r.Body, rc: rc}
			r.Body = b
			c.Response().Before(func() {
				if !b.ended {
					c.Response().Header().Set("Connection", "close")
				}
			})
			err := next(c)
			late := b.late // the handler's read, not the drain below
			// A client waiting for "100 Continue" has not sent a body no
			// handler read: reading would ask for it.
			if !b.ended && r.ContentLength <= maxDrain && (b.read || !strings.EqualFold(r.Header.Get("Expect"), "100-continue")) {
				_, derr := io.CopyN(io.Discard, b, maxDrain+1)
				if errors.Is(derr, http.ErrBodyReadAfterClose) {
					b.end() // the server read it to its end and closed it
				}
			}
			if !b.ended {
				// Go's server, which would read up to 256 KiB more before it
				// closes the connection, finds the deadline passed.
				c.Response().Header().Set("Connection", "close")
				_ = rc.SetReadDeadline(time.Unix(1, 0))
			}
			if late && !c.Response().Committed {
				return echo.NewHTTPError(http.StatusRequestTimeout, "request body not received in time")
			}
			return err
		}
	}
}

// timedBody is a body under bodyDeadline: it lifts the deadline at the end
// of the body (Go's server then reads the connection in the background,
// and a deadline passing under that read would cancel the context of every
// later request on the connection) and notes a read that missed it.
type timedBody struct {
	io.ReadCloser
	rc                *http.ResponseController
	read, ended, late bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	b.read = true
	n, err := b.ReadCloser.Read(p)
	var ne net.Error
	switch {
	case err == io.EOF:
		b.end()
	case errors.As(err, &ne) && ne.Timeout():
		b.late = true
	}
	return n, err
}

func (b *timedBody) end() {
	if !b.ended {
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}
