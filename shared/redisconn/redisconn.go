// Package redisconn opens Redis for the gateway and the dashboard from one
// URL, in go-redis's own URL conventions, as a redis.UniversalClient:
//
//   - redis://[user:pass@]host:port/db (or rediss:// for TLS): one node.
//   - the same with one or more addr=host:port parameters: a Redis Cluster,
//     seeded by the host and every addr (redis.ParseClusterURL). A cluster
//     has no databases: the path must be empty or /0.
//   - the same with master_name=name: Sentinel failover; the host and every
//     addr are the sentinels (redis.ParseFailoverURL), user:pass the
//     sentinels' credentials, and username= / password= parameters the
//     master's.
//
// Other go-redis query parameters (dial_timeout, pool_size, ...) are accepted
// as go-redis accepts them; unknown ones are an error.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// Mode is the deployment a URL names.
type Mode string

// The deployments.
const (
	Single   Mode = "single"
	Cluster  Mode = "cluster"
	Sentinel Mode = "sentinel"
)

// ModeOf tells the deployment opt names, as redis.NewUniversalClient reads it.
func ModeOf(opt *redis.UniversalOptions) Mode {
	switch {
	case opt.MasterName != "":
		return Sentinel
	case opt.IsClusterMode || len(opt.Addrs) > 1:
		return Cluster
	default:
		return Single
	}
}

// Options parses rawURL into the options of a single-node, cluster or
// Sentinel client. Errors do not repeat the URL (it may hold a password);
// callers prefix them with their config key.
func Options(rawURL string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme must be redis or rediss, got %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("missing host")
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		if q.Get("master_name") == "" {
			return nil, errors.New("master_name must not be empty")
		}
		fo, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, err
		}
		return fromFailover(fo), nil
	case q.Has("addr"):
		switch u.Path {
		case "", "/", "/0":
		default:
			return nil, fmt.Errorf("a cluster has only database 0, got path %q", u.Path)
		}
		c := *u
		c.Path = ""
		co, err := redis.ParseClusterURL(c.String())
		if err != nil {
			return nil, err
		}
		return fromCluster(co), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		return fromSimple(o), nil
	}
}

// New opens the client opt names: a *redis.Client, a *redis.ClusterClient or
// a sentinel-backed failover client. A cluster client rereads the slot map
// when a node fails it (see followFailover).
func New(opt *redis.UniversalOptions) redis.UniversalClient {
	c := redis.NewUniversalClient(opt)
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.AddHook(followFailover{cc})
	}
	return c
}

// followFailover asks a cluster client to reread its slot map when a call
// fails because a node is unreachable (a network error: refused, reset,
// timed out, closed) or says the cluster is down. go-redis rereads it on a
// MOVED reply, or once a minute: when a master dies, nobody answers MOVED
// for its slots, so without this the client would keep calling the dead
// master for up to a minute after its replica took over. The reload runs
// in the background, one at a time (ClusterClient.ReloadState); the next
// calls after a promotion go to the new master.
//
// It costs nothing on a call that succeeds or gets an answer (redis.Nil,
// an error reply): only a nil check.
type followFailover struct{ cc *redis.ClusterClient }

func (f followFailover) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f followFailover) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && NodeFailed(err) {
			f.cc.ReloadState(ctx)
		}
		return err
	}
}

func (f followFailover) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && NodeFailed(err) {
			f.cc.ReloadState(ctx)
		}
		return err
	}
}

// NodeFailed reports whether err says a node did not answer (a network
// error: refused, reset, timed out, closed) or the cluster is down, rather
// than being a reply, the caller's cancellation or an error raised without
// reaching the network (a gateway's open breaker).
func NodeFailed(err error) bool {
	if errors.Is(err, redis.Nil) {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		redis.IsClusterDownError(err)
}

func fromSimple(o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: []string{o.Addr}, DB: o.DB, ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		PipelinePoolSize: o.PipelinePoolSize, PipelineReadBufferSize: o.PipelineReadBufferSize, PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix, UnstableResp3: o.UnstableResp3,
	}
}

func fromCluster(o *redis.ClusterOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.Addrs, IsClusterMode: true, ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		MaxRedirects: o.MaxRedirects, ReadOnly: o.ReadOnly, RouteByLatency: o.RouteByLatency,
		RouteByLatencyTolerance: o.RouteByLatencyTolerance, RouteRandomly: o.RouteRandomly,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		PipelinePoolSize: o.PipelinePoolSize, PipelineReadBufferSize: o.PipelineReadBufferSize, PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix, UnstableResp3: o.UnstableResp3,
	}
}

func fromFailover(o *redis.FailoverOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.SentinelAddrs, MasterName: o.MasterName, DB: o.DB, ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
		TLSConfig: o.TLSConfig, RouteByLatency: o.RouteByLatency,
		RouteByLatencyTolerance: o.RouteByLatencyTolerance, RouteRandomly: o.RouteRandomly,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		PipelinePoolSize: o.PipelinePoolSize, PipelineReadBufferSize: o.PipelineReadBufferSize, PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix, UnstableResp3: o.UnstableResp3,
	}
}
