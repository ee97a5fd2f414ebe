package logbuf_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/logbuf"
)

// lockedBuffer is an io.Writer the test can read while Run writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLinesArriveWholeAndInOrder(t *testing.T) {
	var out lockedBuffer
	w := logbuf.New(&out, 1<<20)
	log := slog.New(slog.NewJSONHandler(w, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				log.Info("request", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	assert.Empty(t, out.String(), "nothing is written on the request path")
	require.NoError(t, w.Flush())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	assert.Len(t, lines, 4000)
	for _, l := range lines {
		require.True(t, strings.HasPrefix(l, "{") && strings.HasSuffix(l, "}"), l)
	}
}

// blocked is an output that never returns until released: a full pipe.
type blocked struct{ release chan struct{} }

func (b blocked) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

func TestASlowOutputDropsAndCountsInsteadOfBlocking(t *testing.T) {
	out := blocked{release: make(chan struct{})}
	w := logbuf.New(out, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx, time.Millisecond); close(done) }()
	line := []byte(strings.Repeat("x", 99) + "\n")
	for range 1000 { // far more than the output can take: must not block
		n, err := w.Write(line)
		require.NoError(t, err)
		require.Equal(t, len(line), n)
	}
	close(out.release)
	cancel()
	<-done

	var rest bytes.Buffer
	w2 := logbuf.New(&rest, 1000)
	for range 20 {
		_, _ = w2.Write(line)
	}
	require.NoError(t, w2.Flush())
	assert.Contains(t, rest.String(), `"dropped":10`, "the next write says how many were dropped")
}
