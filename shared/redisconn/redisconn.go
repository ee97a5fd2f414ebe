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
	"errors"
	"fmt"
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
// a sentinel-backed failover client.
func New(opt *redis.UniversalOptions) redis.UniversalClient {
	return redis.NewUniversalClient(opt)
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
