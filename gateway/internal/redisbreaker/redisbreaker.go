// Package redisbreaker is the circuit breaker of the gateway's Redis
// client. It is a go-redis hook, so every user of the client shares it:
// the traffic store's batched pipelines, bans, rate limits, API keys, the
// login guard and the background loops.
//
// The first call that fails because Redis is unreachable or too slow (a
// timeout, a refused or reset connection, a server still loading its data)
// opens it. While it is open every command and pipeline fails at once with
// ErrOpen, without touching the network, so during a freeze no request
// waits for Redis more than once. Run probes Redis while the breaker is
// open: right away, then once per interval, a PING on a connection of its
// own with the client's timeouts. The first answer closes the breaker and
// runs the OnClose functions (the gateway writes back the bans it made
// meanwhile).
//
// Redis's answers are never failures: redis.Nil, a script error, WRONGTYPE
// and the like mean the server is up. Neither is a caller's own
// cancellation, nor a deadline that passed before the call reached the
// network.
package redisbreaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/redisconn"
)

// ErrOpen is every call's error while the breaker is open.
var ErrOpen = errors.New("redis circuit open")

// Breaker is safe for concurrent use.
type Breaker struct {
	open     atomic.Bool
	opens    atomic.Uint64
	rejected atomic.Uint64
	wake     chan struct{} // a probe is wanted
	log      *slog.Logger

	mu       sync.Mutex // orders transitions, so each is logged once
	openedAt time.Time
	onClose  []func(context.Context)
}

var _ redis.Hook = (*Breaker)(nil)

// New returns a closed breaker that logs its transitions to log.
func New(log *slog.Logger) (*Breaker, error) {
	if log == nil {
		return nil, errors.New("redisbreaker: nil logger")
	}
	return &Breaker{wake: make(chan struct{}, 1), log: log}, nil
}

// Open reports whether calls are being refused.
func (b *Breaker) Open() bool { return b.open.Load() }

// Opens is how many times the breaker has opened.
func (b *Breaker) Opens() uint64 { return b.opens.Load() }

// Rejected is how many calls failed with ErrOpen.
func (b *Breaker) Rejected() uint64 { return b.rejected.Load() }

// OnClose adds fn to the functions Run calls, in order, each time the
// breaker closes (after it closed: fn's own calls reach Redis). Add them
// before Run starts.
func (b *Breaker) OnClose(fn func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onClose = append(b.onClose, fn)
}

// Trip opens the breaker because of err (a no-op when it is open).
func (b *Breaker) Trip(err error) {
	if b.open.Load() {
		return
	}
	b.mu.Lock()
	if b.open.Load() {
		b.mu.Unlock()
		return
	}
	b.openedAt = time.Now()
	b.open.Store(true)
	b.mu.Unlock()
	b.opens.Add(1)
	b.log.Warn("redis circuit open: calls fail at once until a probe answers", "err", err)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Breaker) close() {
	b.mu.Lock()
	if !b.open.Load() {
		b.mu.Unlock()
		return
	}
	down := time.Since(b.openedAt)
	b.open.Store(false)
	b.mu.Unlock()
	b.log.Info("redis circuit closed", "open_for", down.Round(time.Millisecond).String())
}

// Failure reports whether err says Redis is unreachable or unable to
// serve, rather than answering (see the package comment).
func Failure(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, ErrOpen),
		errors.Is(err, redis.ErrClosed), errors.Is(err, context.Canceled):
		return false
	}
	var answer redis.Error
	if errors.As(err, &answer) {
		return redis.IsLoadingError(err) || redis.IsMasterDownError(err) ||
			redis.IsClusterDownError(err) || redis.IsMaxClientsError(err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// A dial or read cut short by the deadline is a *net.OpError:
		// Redis did not answer in time. A bare context error means the
		// deadline passed before the call was made (in a queue, say).
		var op *net.OpError
		return errors.As(err, &op)
	}
	return true
}

// Unavailable reports whether err means a call could not be served now
// and may succeed later: the breaker refused it (ErrOpen), the network
// failed it (no connection, reset, cut short by its deadline), or Redis
// said it cannot serve (loading, master down, cluster down). An answer,
// a bug or a cancelled request is not. The admin API answers these 503.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, ErrOpen) || redisconn.NodeFailed(err) ||
		redis.IsLoadingError(err) || redis.IsMasterDownError(err) || redis.IsMaxClientsError(err)
}

func (b *Breaker) observe(err error) {
	if err != nil && Failure(err) {
		b.Trip(err)
	}
}

// DialHook counts failed dials. It never refuses one: go-redis's own
// background redial must be able to reset the pool while the breaker is
// open.
func (b *Breaker) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		b.observe(err)
		return conn, err
	}
}

// ProcessHook refuses commands while the breaker is open and opens it on a
// failure.
func (b *Breaker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if b.open.Load() {
			b.rejected.Add(1)
			cmd.SetErr(ErrOpen)
			return ErrOpen
		}
		err := next(ctx, cmd)
		b.observe(err)
		return err
	}
}

// ProcessPipelineHook does the same for pipelines and transactions; a
// refused pipeline's commands all carry ErrOpen.
func (b *Breaker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if b.open.Load() {
			b.rejected.Add(1)
			for _, cmd := range cmds {
				cmd.SetErr(ErrOpen)
			}
			return ErrOpen
		}
		err := next(ctx, cmds)
		b.observe(err)
		return err
	}
}

// Run probes Redis whenever the breaker is open, until ctx is done: at
// once when it opens, then every interval, until probe succeeds; it then
// closes the breaker and calls the OnClose functions.
func (b *Breaker) Run(ctx context.Context, interval time.Duration, probe func(context.Context) error) error {
	if interval <= 0 || probe == nil {
		return errors.New("redisbreaker: interval must be positive and probe set")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		}
		for b.open.Load() {
			err := probe(ctx)
			if err == nil {
				b.close()
				b.mu.Lock()
				fns := b.onClose
				b.mu.Unlock()
				for _, fn := range fns {
					fn(ctx)
				}
				break
			}
			b.log.Debug("redis probe failed", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
	}
}

// Ping returns a probe that PINGs the deployment opt names (one node, a
// cluster or a Sentinel master) on a client of its own, made for each
// probe: it always dials, whatever the state of the shared client's pool
// (go-redis stops dialing for a while after many dial errors), and it runs
// with opt's dial and read timeouts. On a cluster the PING goes to one
// node, after the client has read the slot map from a seed.
func Ping(opt *redis.UniversalOptions) func(context.Context) error {
	o := *opt
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
	o.MaxRetries, o.DialerRetries = -1, 1
	return func(ctx context.Context) error {
		c := redis.NewUniversalClient(&o)
		defer c.Close()
		return c.Ping(ctx).Err()
	}
}

// ClusterPing returns the probe for a Redis Cluster: it rereads the slot
// map of cc, the client every caller shares, from a node that answers, and
// asks every master in it for CLUSTER INFO; it succeeds when each master
// answers and reports cluster_state:ok.
//
// A PING to one node (Ping) is not enough on a cluster: while a dead
// master's replica is not yet promoted the other nodes still answer, the
// breaker would close and the next call for the dead master's slots open it
// again. And the shared client must follow the promotion: go-redis rereads
// its slot map on a MOVED reply or once a minute, not when a node stops
// answering, and ClusterClient.ReloadState only starts a reload in the
// background. ForEachMaster rereads it before it returns, so once the probe
// succeeds the callers' commands go to the promoted masters.
//
// The probe runs only while the breaker is open. Its commands go through
// the node clients, which carry no hooks: the breaker does not refuse them.
func ClusterPing(cc *redis.ClusterClient) func(context.Context) error {
	return func(ctx context.Context) error {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			info, err := m.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s: cluster state not ok", m.Options().Addr)
			}
			return nil
		})
	}
}
