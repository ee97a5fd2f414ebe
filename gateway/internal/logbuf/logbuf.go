// Package logbuf is the gateway's log output: a request appends its line to
// a buffer in memory and one goroutine writes the buffer out every
// interval, or sooner when it is half full. A request never waits for
// stdout (a slow terminal, a full pipe to a log shipper) and the gateway
// makes one write for many lines instead of one per request. When the
// buffer is full, lines are dropped and counted, never waited for; the next
// write reports how many.
package logbuf

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Writer buffers whole lines for out. Safe for concurrent use.
type Writer struct {
	out   io.Writer
	max   int
	kick  chan struct{}
	mu    sync.Mutex
	buf   []byte
	spare []byte
	drops int64
	wmu   sync.Mutex // one writer to out at a time
}

// New returns a Writer that holds at most max bytes between writes.
func New(out io.Writer, max int) *Writer {
	return &Writer{out: out, max: max, kick: make(chan struct{}, 1), buf: make([]byte, 0, 64<<10)}
}

// Write keeps p (one log record) for the next flush, or drops it when the
// buffer is full. It never blocks on out and never fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.buf)+len(p) > w.max {
		w.drops++
		w.mu.Unlock()
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	half := len(w.buf) > w.max/2
	w.mu.Unlock()
	if half {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out everything buffered so far.
func (w *Writer) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	b, drops := w.buf, w.drops
	w.buf, w.spare, w.drops = w.spare[:0], nil, 0
	w.mu.Unlock()
	if drops > 0 {
		b = fmt.Appendf(b, `{"time":%q,"level":"WARN","msg":"log lines dropped: output too slow","dropped":%d}`+"\n",
			time.Now().Format(time.RFC3339Nano), drops)
	}
	var err error
	if len(b) > 0 {
		_, err = w.out.Write(b)
	}
	w.mu.Lock()
	if w.spare == nil && cap(b) <= 4*w.max {
		w.spare = b[:0]
	}
	w.mu.Unlock()
	return err
}

// Run flushes every interval, and when the buffer is half full, until ctx
// ends; then it flushes once more.
func (w *Writer) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = w.Flush()
			return nil
		case <-t.C:
		case <-w.kick:
		}
		_ = w.Flush()
	}
}
