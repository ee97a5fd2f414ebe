// Package config loads the gateway's configuration: defaults in code, then a
// YAML file (with ${VAR} expanded from the environment), then BULWARK_*
// environment overrides for deployment settings. Load validates everything at
// once and reports every problem together, each naming its key, so a bad file
// never starts a gateway and a bad reload never replaces a good config.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FailMode says what the gateway does when a dependency is unavailable.
type FailMode string

// Fail modes.
const (
	FailOpen   FailMode = "open"
	FailClosed FailMode = "closed"
)

// Config is the validated gateway configuration.
type Config struct {
	Listen         string
	GatewayID      string
	Routes         []Route
	TrustedProxies []netip.Prefix
	Redis          Redis
	Mongo          Mongo
	Scorer         Scorer
	BlockAt        float64 // score >= BlockAt: 403 and a ban
	ThrottleAt     float64 // score >= ThrottleAt: 429
	BanTTL         time.Duration
	Shadow         bool // record decisions but let every request through
	Events         Events
	Scoring        Scoring
}

// Scoring tunes what the gateway gathers for the scorer and how it caches
// scores.
type Scoring struct {
	// SensitivePaths are normalised paths (lower case, no trailing slash)
	// whose requests count as sensitive-path pressure; a set.
	SensitivePaths map[string]bool
	// VisitWindow is the fixed window of the visit counter (seed 002).
	VisitWindow time.Duration
	// CacheTTL is how long a client's score is reused; 0 disables the
	// cache (every request is scored).
	CacheTTL time.Duration
	// CacheTolerance is how far (a fraction) a count may move before a
	// cached score is recomputed.
	CacheTolerance float64
}

// Route sends requests whose cleaned path starts with Path (on a segment
// boundary) to Upstream.
type Route struct {
	Path     string
	Upstream *url.URL
}

// Redis holds the shared-state connection settings.
type Redis struct {
	URL      string
	Prefix   string
	FailMode FailMode
	Timeout  time.Duration
}

// Mongo holds the event-history connection settings.
type Mongo struct {
	URI       string
	Database  string
	Retention time.Duration
}

// Scorer holds the scoring service's client settings.
type Scorer struct {
	URL      string
	Timeout  time.Duration
	FailMode FailMode
}

// Events tunes the asynchronous event pipeline.
type Events struct {
	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
	StreamMaxLen  int64
}

// file mirrors the YAML document. Durations are strings so that a bad one is
// reported with its key.
type file struct {
	Listen         string      `yaml:"listen"`
	GatewayID      string      `yaml:"gateway_id"`
	Routes         []fileRoute `yaml:"routes"`
	TrustedProxies []string    `yaml:"trusted_proxies"`
	Redis          struct {
		URL      string `yaml:"url"`
		Prefix   string `yaml:"prefix"`
		FailMode string `yaml:"fail_mode"`
		Timeout  string `yaml:"timeout"`
	} `yaml:"redis"`
	Mongo struct {
		URI       string `yaml:"uri"`
		Database  string `yaml:"database"`
		Retention string `yaml:"retention"`
	} `yaml:"mongo"`
	Scorer struct {
		URL      string `yaml:"url"`
		Timeout  string `yaml:"timeout"`
		FailMode string `yaml:"fail_mode"`
	} `yaml:"scorer"`
	Thresholds struct {
		Block    *float64 `yaml:"block"`
		Throttle *float64 `yaml:"throttle"`
	} `yaml:"thresholds"`
	BanTTL  string `yaml:"ban_ttl"`
	Shadow  bool   `yaml:"shadow"`
	Scoring struct {
		SensitivePaths []string `yaml:"sensitive_paths"`
		VisitWindow    string   `yaml:"visit_window"`
		CacheTTL       string   `yaml:"cache_ttl"`
		CacheTolerance *float64 `yaml:"cache_tolerance"`
	} `yaml:"scoring"`
	Events struct {
		QueueSize     int    `yaml:"queue_size"`
		BatchSize     int    `yaml:"batch_size"`
		FlushInterval string `yaml:"flush_interval"`
		StreamMaxLen  int64  `yaml:"stream_max_len"`
	} `yaml:"events"`
}

type fileRoute struct {
	Path     string `yaml:"path"`
	Upstream string `yaml:"upstream"`
}

func defaults() file {
	var f file
	f.Listen = ":8080"
	f.Redis.URL = "redis://127.0.0.1:6379/0"
	f.Redis.Prefix = "bw:"
	f.Redis.FailMode = string(FailOpen)
	f.Redis.Timeout = "100ms"
	f.Mongo.URI = "mongodb://127.0.0.1:27017"
	f.Mongo.Database = "bulwark"
	f.Mongo.Retention = "720h"
	f.Scorer.URL = "http://127.0.0.1:8081"
	f.Scorer.Timeout = "50ms"
	f.Scorer.FailMode = string(FailOpen)
	f.BanTTL = "10m"
	f.Scoring.SensitivePaths = []string{"/auth", "/login", "/api/login", "/api/register", "/checkout", "/api/checkout"}
	f.Scoring.VisitWindow = "60s"
	f.Scoring.CacheTTL = "1s"
	f.Events.QueueSize = 10000
	f.Events.BatchSize = 200
	f.Events.FlushInterval = "200ms"
	f.Events.StreamMaxLen = 10000
	return f
}

// Env names of the deployment overrides.
const (
	EnvConfig         = "BULWARK_CONFIG"
	EnvListen         = "BULWARK_LISTEN"
	EnvRedisURL       = "BULWARK_REDIS_URL"
	EnvRedisPrefix    = "BULWARK_REDIS_PREFIX"
	EnvMongoURI       = "BULWARK_MONGO_URI"
	EnvMongoDB        = "BULWARK_MONGO_DB"
	EnvScorerURL      = "BULWARK_SCORER_URL"
	EnvUpstreamURL    = "BULWARK_UPSTREAM_URL"
	EnvTrustedProxies = "BULWARK_TRUSTED_PROXIES"
	EnvGatewayID      = "BULWARK_GATEWAY_ID"
)

// Load reads the file at path (none when path is empty), applies the
// environment, and validates. getenv is os.Getenv in production.
func Load(path string, getenv func(string) string) (*Config, error) {
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		data = b
	}
	return Parse(data, getenv)
}

// Parse is Load for a document already in memory.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	f := defaults()
	if len(bytes.TrimSpace(data)) > 0 {
		expanded := os.Expand(string(data), getenv)
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(expanded), &root); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := unknownKeys(&root, f); err != nil {
			return nil, err
		}
		if err := root.Decode(&f); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	applyEnv(&f, getenv)
	return f.validate()
}

func applyEnv(f *file, getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&f.Listen, EnvListen)
	set(&f.Redis.URL, EnvRedisURL)
	set(&f.Redis.Prefix, EnvRedisPrefix)
	set(&f.Mongo.URI, EnvMongoURI)
	set(&f.Mongo.Database, EnvMongoDB)
	set(&f.Scorer.URL, EnvScorerURL)
	set(&f.GatewayID, EnvGatewayID)
	if v := getenv(EnvTrustedProxies); v != "" {
		f.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.TrustedProxies = append(f.TrustedProxies, p)
			}
		}
	}
	if v := getenv(EnvUpstreamURL); v != "" && len(f.Routes) == 0 {
		f.Routes = []fileRoute{{Path: "/", Upstream: v}}
	}
}

func (f *file) validate() (*Config, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	dur := func(key, v string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(key, "invalid duration %q", v)
		case d < min:
			bad(key, "must be at least %s, got %s", min, v)
		}
		return d
	}
	mode := func(key, v string) FailMode {
		m := FailMode(v)
		if m != FailOpen && m != FailClosed {
			bad(key, "must be %q or %q, got %q", FailOpen, FailClosed, v)
		}
		return m
	}
	c := &Config{
		Listen:    f.Listen,
		GatewayID: f.GatewayID,
		Shadow:    f.Shadow,
		Redis: Redis{
			URL: f.Redis.URL, Prefix: f.Redis.Prefix,
			FailMode: mode("redis.fail_mode", f.Redis.FailMode),
			Timeout:  dur("redis.timeout", f.Redis.Timeout, time.Millisecond),
		},
		Mongo: Mongo{
			URI: f.Mongo.URI, Database: f.Mongo.Database,
			Retention: dur("mongo.retention", f.Mongo.Retention, time.Hour),
		},
		Scorer: Scorer{
			URL:      f.Scorer.URL,
			Timeout:  dur("scorer.timeout", f.Scorer.Timeout, time.Millisecond),
			FailMode: mode("scorer.fail_mode", f.Scorer.FailMode),
		},
		BanTTL: dur("ban_ttl", f.BanTTL, time.Second),
		Events: Events{
			QueueSize:     f.Events.QueueSize,
			BatchSize:     f.Events.BatchSize,
			FlushInterval: dur("events.flush_interval", f.Events.FlushInterval, time.Millisecond),
			StreamMaxLen:  f.Events.StreamMaxLen,
		},
	}
	if c.GatewayID == "" {
		c.GatewayID, _ = os.Hostname()
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if c.Redis.Prefix == "" {
		bad("redis.prefix", "must not be empty")
	}
	checkURL := func(key, v string, schemes ...string) *url.URL {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
			bad(key, "must be an absolute %s URL, got %q", strings.Join(schemes, " or "), v)
			return nil
		}
		return u
	}
	checkURL("redis.url", c.Redis.URL, "redis", "rediss")
	checkURL("mongo.uri", c.Mongo.URI, "mongodb", "mongodb+srv")
	checkURL("scorer.url", c.Scorer.URL, "http", "https")
	if c.Mongo.Database == "" {
		bad("mongo.database", "must not be empty")
	}

	if len(f.Routes) == 0 {
		bad("routes", "at least one route is required (or set %s)", EnvUpstreamURL)
	}
	seen := map[string]bool{}
	for i, r := range f.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Path == "":
			bad(key+".path", "missing")
			continue
		case !strings.HasPrefix(r.Path, "/"):
			bad(key+".path", "must start with '/', got %q", r.Path)
			continue
		case seen[r.Path]:
			bad(key+".path", "duplicate route %q", r.Path)
		}
		seen[r.Path] = true
		if r.Upstream == "" {
			bad(key+".upstream", "missing")
			continue
		}
		if u := checkURL(key+".upstream", r.Upstream, "http", "https"); u != nil {
			c.Routes = append(c.Routes, Route{Path: r.Path, Upstream: u})
		}
	}
	for i, s := range f.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "invalid CIDR or address %q", s)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}

	c.BlockAt, c.ThrottleAt = 0.8, 0.5
	if f.Thresholds.Block != nil {
		c.BlockAt = *f.Thresholds.Block
	}
	if f.Thresholds.Throttle != nil {
		c.ThrottleAt = *f.Thresholds.Throttle
	}
	if c.BlockAt <= 0 || c.BlockAt > 1 {
		bad("thresholds.block", "must be in (0, 1], got %v", c.BlockAt)
	}
	if c.ThrottleAt <= 0 || c.ThrottleAt > c.BlockAt {
		bad("thresholds.throttle", "must be in (0, thresholds.block], got %v", c.ThrottleAt)
	}
	c.Scoring.SensitivePaths = map[string]bool{}
	for i, p := range f.Scoring.SensitivePaths {
		if !strings.HasPrefix(p, "/") {
			bad(fmt.Sprintf("scoring.sensitive_paths[%d]", i), "must start with '/', got %q", p)
			continue
		}
		c.Scoring.SensitivePaths[normalizePath(p)] = true
	}
	c.Scoring.VisitWindow = dur("scoring.visit_window", f.Scoring.VisitWindow, time.Second)
	c.Scoring.CacheTTL = dur("scoring.cache_ttl", f.Scoring.CacheTTL, 0)
	if c.Scoring.CacheTTL > time.Minute {
		bad("scoring.cache_ttl", "must be at most 1m, got %s", f.Scoring.CacheTTL)
	}
	c.Scoring.CacheTolerance = 0.2
	if f.Scoring.CacheTolerance != nil {
		c.Scoring.CacheTolerance = *f.Scoring.CacheTolerance
	}
	if c.Scoring.CacheTolerance < 0 || c.Scoring.CacheTolerance > 1 {
		bad("scoring.cache_tolerance", "must be in [0, 1], got %v", c.Scoring.CacheTolerance)
	}
	if c.Events.QueueSize < 1 {
		bad("events.queue_size", "must be positive, got %d", c.Events.QueueSize)
	}
	if c.Events.BatchSize < 1 || c.Events.BatchSize > c.Events.QueueSize {
		bad("events.batch_size", "must be in [1, events.queue_size], got %d", c.Events.BatchSize)
	}
	if c.Events.StreamMaxLen < 100 {
		bad("events.stream_max_len", "must be at least 100, got %d", c.Events.StreamMaxLen)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid config:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// normalizePath lower-cases p and drops trailing slashes, as the traffic
// package does with request paths.
func normalizePath(p string) string {
	p = strings.ToLower(p)
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// parsePrefix accepts a CIDR or a bare address (a /32 or /128) and returns the
// masked network with IPv4-mapped IPv6 unmapped.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func splitHostPort(listen string) (string, int, error) {
	i := strings.LastIndex(listen, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("must be host:port, got %q", listen)
	}
	port, err := strconv.Atoi(listen[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", listen)
	}
	return listen[:i], port, nil
}
