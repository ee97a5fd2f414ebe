// Package server assembles the gateway: an echo instance whose routes.go
// shows the whole protection chain in the order a request travels, the
// middlewares that make up that chain, the login and key-check endpoints,
// hot reload of the configuration, and the one error handler that renders
// every failure as JSON.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/gateway/internal/audit"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Traffic counts requests in shared state and reports bans.
type Traffic interface {
	Observe(ctx context.Context, ip netip.Addr, now time.Time, req traffic.Request) (traffic.Observation, error)
}

// Bans creates bans that every replica enforces.
type Bans interface {
	Ban(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string, now time.Time) error
	// Left returns how long ip's ban has left, 0 for none.
	Left(ctx context.Context, ip netip.Addr) (time.Duration, error)
}

// Fallback keeps counting, scoring and banning in this gateway while
// Redis is unreachable (traffic.Memory): the same features from the same
// requests; the bans Redis could not take, held (Banned) until they are
// written back; and the bans Redis holds that this gateway has seen,
// enforced while Redis cannot be read (BannedInRedis).
type Fallback interface {
	Observe(ip netip.Addr, now time.Time, req traffic.Request) traffic.Observation
	RecordResponse(ip netip.Addr, now time.Time, status int)
	RecordRefusal(ip netip.Addr, now time.Time)
	Ban(ip netip.Addr, ttl time.Duration, reason string, now time.Time)
	Banned(ip netip.Addr, now time.Time) (time.Duration, bool)
	Seen(ip netip.Addr, ttl time.Duration, now time.Time)
	Lifted(ip netip.Addr)
	BannedInRedis(ip netip.Addr, now time.Time) (time.Duration, bool)
}

// Lists matches clients against the allow and deny lists.
type Lists interface {
	Match(ip netip.Addr) lists.Verdict
}

// Limiter enforces sliding-window rate limits.
type Limiter interface {
	Allow(ctx context.Context, key string, limit int64, window time.Duration, now time.Time) (ratelimit.Result, error)
}

// Keys mints and checks API keys and counts authentication failures.
type Keys interface {
	MintFor(ctx context.Context, role, account string, now time.Time) (string, apikey.Session, error)
	Lookup(ctx context.Context, key string, now time.Time) (apikey.Session, error)
	Fail(ctx context.Context, ip netip.Addr, window time.Duration, threshold int, now time.Time) (int, bool, error)
	Failures(ctx context.Context, ip netip.Addr, window time.Duration, now time.Time) (int, error)
}

// Guard protects logins from brute force.
type Guard interface {
	Check(ctx context.Context, login, password string, ip netip.Addr, now time.Time) (bool, error)
	Locked(ctx context.Context, login string, ip netip.Addr, now time.Time) (bool, bool, time.Duration, error)
	Record(ctx context.Context, login string, ip netip.Addr, success bool, now time.Time) (bool, bool, error)
}

// Scorer scores a client's observed behaviour.
type Scorer interface {
	Score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error)
}

// LocalScorer runs the scorer's rules in the gateway: the bound that
// decides whether the scorer must be waited for, and the scores made
// without it (package localscore).
type LocalScorer interface {
	Bound(req *wire.ScoreRequest, addr netip.Addr) (bound, local float64, ok bool)
	// Verifies reports whether the scorer verifies ua's crawler claim by
	// reverse DNS (an allow rule with domains claims it).
	Verifies(ua string) bool
	Check(profileHash string)
	Fallback(req wire.ScoreRequest, addr netip.Addr, block, throttle float64) wire.ScoreResponse
}

// Publisher takes events off the request path.
type Publisher interface {
	Publish(wire.Event)
}

// Stats counts decisions per second.
type Stats interface {
	Request(now time.Time, d stats.Decision)
	Ban(now time.Time)
}

// Auditor records audit-log entries without blocking.
type Auditor interface {
	Record(audit.Entry)
}

// Ready reports whether a dependency needed to serve is reachable.
type Ready func(ctx context.Context) error

// Deps are the gateway's collaborators. Lists, Limiter, Keys and Guard may
// be nil: the layer they serve is then off.
type Deps struct {
	Traffic Traffic
	Bans    Bans
	// Fallback, when set, is what fail_mode open runs on while Redis is
	// unreachable; nil forwards such requests uncounted.
	Fallback Fallback
	Lists    Lists
	Limiter  Limiter
	Keys     Keys
	// JWT verifies bearer tokens; nil: bearer tokens are not JWTs the
	// gateway knows (route auth: jwt cannot be configured without one).
	JWT    JWTVerifier
	Guard  Guard
	Scorer Scorer
	Local  LocalScorer // nil: no fast path, and the default profile's fallback
	Events Publisher
	Stats  Stats
	Audit  Auditor // nil: no request audit
	// Tunnels tracks the WebSocket tunnels the gateway opens; the gateway
	// closes a client's tunnels when it bans the client itself. Nil: a
	// registry of the gateway's own (then only its own bans close them).
	Tunnels *tunnels.Registry
	Ready   Ready
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// JWTVerifier checks a bearer token's signature, expiry and claims and
// returns the principal it names (the configured claim). Any error means
// the token is not a valid credential.
type JWTVerifier interface {
	Verify(token string, now time.Time) (principal string, err error)
}

func (d Deps) validate() error {
	if d.Traffic == nil || d.Bans == nil || d.Scorer == nil || d.Events == nil || d.Stats == nil || d.Log == nil {
		return errors.New("server: missing dependency")
	}
	return nil
}
