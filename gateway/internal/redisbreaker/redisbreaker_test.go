package redisbreaker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/redisbreaker"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), `"msg":"`+msg)
}

// client is a go-redis client for addr with the gateway's settings (no
// retries, timeout deadlines) and a breaker.
func client(t *testing.T, addr string, timeout time.Duration) (*redis.Client, *redis.Options, *redisbreaker.Breaker, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	b, err := redisbreaker.New(slog.New(slog.NewJSONHandler(logs, nil)))
	require.NoError(t, err)
	opt := &redis.Options{Addr: addr, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1, DialerRetries: 1}
	rdb := redis.NewClient(opt)
	rdb.AddHook(b)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, opt, b, logs
}

// run starts the breaker's prober with a short interval for the test.
func run(t *testing.T, b *redisbreaker.Breaker, probe func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx, 50*time.Millisecond, probe); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestFailure(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: deadline{}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"missing key", redis.Nil, false},
		{"an unknown transport error", errors.New("x"), true},
		{"WRONGTYPE answer", redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"NOSCRIPT answer", redis.ErrNoScript, false},
		{"LOADING answer", redisErr("LOADING Redis is loading the dataset in memory"), true},
		{"MASTERDOWN answer", redisErr("MASTERDOWN Link with MASTER is down"), true},
		{"open breaker", fmt.Errorf("observe: %w", redisbreaker.ErrOpen), false},
		{"closed client", redis.ErrClosed, false},
		{"caller cancelled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline passed before the call", context.DeadlineExceeded, false},
		{"read timeout", timeout, true},
		{"dial cut by the deadline", &net.OpError{Op: "dial", Net: "tcp", Err: ctxDeadline{}}, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, true},
		{"eof", io.EOF, true},
		{"pool timeout", redis.ErrPoolTimeout, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, redisbreaker.Failure(tt.err), tt.name)
	}
}

type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

type deadline struct{}

func (deadline) Error() string   { return "i/o timeout" }
func (deadline) Timeout() bool   { return true }
func (deadline) Temporary() bool { return true }

// ctxDeadline is what net returns for a dial cut by its context's deadline.
type ctxDeadline struct{ deadline }

func (ctxDeadline) Is(err error) bool { return err == context.DeadlineExceeded }

// A frozen Redis (SIGSTOP: the kernel still accepts, nothing answers) costs
// the first call its timeout; every call after it, plain or pipelined,
// fails with ErrOpen without reaching the network, until Redis answers a
// probe again.
func TestFrozenRedisOpensAndRecovers(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	rdb, opt, b, logs := client(t, srv.Addr(), 300*time.Millisecond)
	var closes atomic.Int32
	b.OnClose(func(ctx context.Context) {
		assert.NoError(t, rdb.Set(ctx, "k", "after", 0).Err(), "OnClose runs with the breaker closed")
		closes.Add(1)
	})
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())

	srv.Freeze()
	// Started before the probe runs, so the breaker stays open while the
	// test looks at it.
	err := rdb.Get(ctx, "k").Err()
	require.Error(t, err)
	assert.NotErrorIs(t, err, redisbreaker.ErrOpen, "the first call waits for its timeout")
	assert.True(t, redisbreaker.Failure(err), "%v", err)
	require.True(t, b.Open())

	for range 20 {
		assert.ErrorIs(t, rdb.Get(ctx, "k").Err(), redisbreaker.ErrOpen)
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "k")
		p.Incr(ctx, "n")
		return nil
	})
	assert.ErrorIs(t, err, redisbreaker.ErrOpen)
	for _, c := range cmds {
		assert.ErrorIs(t, c.Err(), redisbreaker.ErrOpen, "every command of a refused pipeline says why")
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "n"); return nil })
	assert.ErrorIs(t, err, redisbreaker.ErrOpen)
	assert.EqualValues(t, 22, b.Rejected())

	run(t, b, redisbreaker.Ping(&redis.UniversalOptions{Addrs: []string{opt.Addr}, DialTimeout: opt.DialTimeout, ReadTimeout: opt.ReadTimeout, WriteTimeout: opt.WriteTimeout}))
	time.Sleep(200 * time.Millisecond) // probes keep failing while frozen
	assert.True(t, b.Open(), "no answer, no closing")
	srv.Thaw()
	require.Eventually(t, func() bool { return !b.Open() }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return closes.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	v, err := rdb.Get(ctx, "k").Result()
	require.NoError(t, err)
	assert.Equal(t, "after", v)
	assert.EqualValues(t, 1, b.Opens())
	assert.Equal(t, 1, logs.count("redis circuit open"), "the transition is logged once")
	assert.Equal(t, 1, logs.count("redis circuit closed"))
}

// Many requests fail at once when Redis freezes under load: the breaker
// opens once and logs it once.
func TestConcurrentFailuresOpenOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	rdb, _, b, logs := client(t, ln.Addr().String(), 200*time.Millisecond)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { _ = rdb.Get(context.Background(), "k").Err() })
	}
	wg.Wait()
	assert.True(t, b.Open())
	assert.EqualValues(t, 1, b.Opens())
	assert.Equal(t, 1, logs.count("redis circuit open"))
}

// A refused connection opens the breaker as a timeout does.
func TestRedisDownOpens(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	rdb, _, b, _ := client(t, addr, time.Second)
	err = rdb.Ping(context.Background()).Err()
	require.Error(t, err)
	assert.True(t, b.Open())
	assert.ErrorIs(t, rdb.Ping(context.Background()).Err(), redisbreaker.ErrOpen)
}

// Redis's own answers, however unwelcome, keep the breaker closed.
func TestAnswersAreNotFailures(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	rdb, _, b, _ := client(t, srv.Addr(), time.Second)
	ctx := context.Background()
	assert.ErrorIs(t, rdb.Get(ctx, "missing").Err(), redis.Nil)
	require.NoError(t, rdb.Set(ctx, "s", "v", 0).Err())
	assert.Error(t, rdb.LPush(ctx, "s", "x").Err(), "WRONGTYPE")
	assert.Error(t, rdb.EvalSha(ctx, "0123456789012345678901234567890123456789", nil).Err(), "NOSCRIPT")
	assert.Error(t, rdb.Eval(ctx, "return redis.error_reply('boom')", nil).Err())
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "missing")
		p.LPush(ctx, "s", "x")
		return nil
	})
	assert.Error(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.Error(t, rdb.Get(cctx, "s").Err(), "a caller that gave up")
	assert.False(t, b.Open())
	assert.Zero(t, b.Opens())
}

// The traffic store's auto-pipelining batcher goes through the hook: one
// Observe pays the freeze, the next fails at once.
func TestBatcherGoesThroughTheBreaker(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	rdb, _, b, _ := client(t, srv.Addr(), 300*time.Millisecond)
	store, err := traffic.New(rdb, "t:")
	require.NoError(t, err)
	ip := netip.MustParseAddr("192.0.2.1")
	req := traffic.Describe("/", nil, time.Minute)
	ctx := context.Background()
	_, err = store.Observe(ctx, ip, time.Now(), req)
	require.NoError(t, err)

	srv.Freeze()
	_, err = store.Observe(ctx, ip, time.Now(), req)
	require.Error(t, err)
	assert.NotErrorIs(t, err, redisbreaker.ErrOpen)
	require.True(t, b.Open())
	_, err = store.Observe(ctx, ip, time.Now(), req)
	assert.ErrorIs(t, err, redisbreaker.ErrOpen)
	assert.ErrorIs(t, store.RecordResponse(ctx, ip, time.Now(), 404), redisbreaker.ErrOpen)
	srv.Thaw()
}

// The hook's cost on a call while the breaker is closed, next being free.
func BenchmarkProcessHook(b *testing.B) {
	next := func(context.Context, redis.Cmder) error { return nil }
	cmd := redis.NewStatusCmd(context.Background(), "ping")
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			_ = next(context.Background(), cmd)
		}
	})
	b.Run("breaker", func(b *testing.B) {
		br, _ := redisbreaker.New(slog.New(slog.DiscardHandler))
		h := br.ProcessHook(next)
		for b.Loop() {
			_ = h(context.Background(), cmd)
		}
	})
}
