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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathclass"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
	"github.com/bulwarkgw/bulwark/shared/redisconn"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
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
	Listen    string
	GatewayID string
	Routes    []Route
	// PathEquivalence is the top-level equivalence: each route's default,
	// and the one requests no route matched are keyed by.
	PathEquivalence *pathnorm.Equivalence
	TrustedProxies  []netip.Prefix
	ClientIPHeader  string // the one header trusted proxies name the client in; "" for the default order
	Redis           Redis
	Mongo           Mongo
	Scorer          Scorer
	BlockAt         float64 // score >= BlockAt: 403 and a ban
	ThrottleAt      float64 // score >= ThrottleAt: 429
	BanTTL          time.Duration
	Shadow          bool // record decisions but let every request through
	Events          Events
	Admin           Admin
	Lists           Lists
	RateLimit       RateLimit
	APIKey          APIKey
	JWT             JWT
	Login           Login
	Edge            Edge
	AuditRequests   bool    // write every proxied request to the audit log (seed 001)
	CostPerBlock    float64 // backend cost a blocked request saves (seed 002: $0.45)
	Scoring         Scoring
	// ShutdownTimeout bounds a shutdown: draining requests, flushing
	// events and disconnecting from MongoDB.
	ShutdownTimeout time.Duration
}

// Admin configures the admin API's listener and credentials.
type Admin struct {
	// Listen is the admin API's address; the API is served only when it is
	// set and there are credentials (a token, or a username and password).
	Listen   string
	Token    string // bearer token
	Username string // HTTP Basic
	Password string
}

// Lists are CIDRs from the config file; more are added at run time.
type Lists struct {
	Allow, Deny []netip.Prefix
}

// RateLimit is the per-client sliding-window limit over all routes (seed
// 001's requests_per_minute) and per API key; 0 disables a limit.
type RateLimit struct {
	RequestsPerMinute int64
	Window            time.Duration // the per-client window; 60 s unless set
	PerKey            Limit
}

// Limit is Requests per Window.
type Limit struct {
	Requests int64
	Window   time.Duration
}

// APIKey configures keys minted by the backend's login (seed 000).
type APIKey struct {
	AuthPath         string   // the gateway path that logs in, e.g. /auth
	AuthUpstream     *url.URL // where the login is forwarded (path kept)
	KeyTTL           time.Duration
	RoleAttribute    string
	InvalidWindow    time.Duration
	InvalidThreshold int
	BlockFor         time.Duration
	// Permissions: endpoint (first path segment below the route) → method →
	// roles. An endpoint that is not listed is forwarded.
	Permissions map[string]map[string][]string
}

// JWT configures bearer-token verification (package jwtauth): a request
// with a valid JWT is judged as the principal its PrincipalClaim names.
// It is on when there are Keys or a JWKSFile.
type JWT struct {
	PrincipalClaim string        // the claim naming the principal (sub)
	Issuer         string        // "iss" must match when set
	Audience       string        // "aud" must hold it when set
	Leeway         time.Duration // clock skew allowed on exp, nbf and iat
	RequireExp     bool          // refuse tokens without exp
	JWKSFile       string        // a JWKS file, re-read every ReloadInterval
	ReloadInterval time.Duration
	Keys           []jwtauth.Key // inline keys, parsed and checked
}

// Enabled reports whether bearer JWTs are verified at all.
func (j JWT) Enabled() bool { return len(j.Keys) > 0 || j.JWKSFile != "" }

// Login configures brute-force protection of logins (seeds 003 and 004).
type Login struct {
	Routes        []LoginRoute
	LoginBucket   Bucket
	PassBucket    Bucket
	IPBucket      Bucket
	Failures      int
	FailureWindow time.Duration
	LockFor       time.Duration
	// Duplicates says which value of a login field named twice is the
	// login (the upstream's reading; loginname.Last by default).
	Duplicates loginname.Duplicates
}

// LoginRoute is a path where logins are read from the request body.
type LoginRoute struct {
	Path          string
	LoginField    string
	PasswordField string
}

// Bucket allows Rate attempts per Interval; Rate 0 disables it.
type Bucket struct {
	Rate     int
	Interval time.Duration
}

// Edge holds listener hygiene settings.
type Edge struct {
	MaxBodyBytes int64
	// BodyBufferBytes is the most of one request body the gateway holds in
	// memory: a body it reads itself (a login) may be no larger, and a
	// chunked body is read this far before it is forwarded.
	// BodyBufferMemory bounds all requests' buffered bodies together.
	BodyBufferBytes  int64
	BodyBufferMemory int64
	MaxHeaderBytes   int
	// MaxHeaderCount bounds a request's header fields, its chunked
	// trailer's included (package framing answers 431 above it).
	MaxHeaderCount    int
	ReadHeaderTimeout time.Duration
	CORS              CORS
	Connections       Connections
	// MaxTunnelsPerClient caps the WebSocket tunnels one client (its
	// identity: an address, an IPv6 /64 or a principal) holds open on one
	// gateway; 0 turns the cap off.
	MaxTunnelsPerClient int
}

// Connections bounds the client connections (package connlimit).
type Connections struct {
	Max         int           // at once; 0: derived from the open-file limit at start
	PerAddress  int           // at once from one TCP peer (an IPv6 /64); 0: off
	IdleTimeout time.Duration // a keep-alive connection idle this long is closed
}

// CORS is strict by default: no origin is allowed until listed.
type CORS struct {
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	AllowCredentials bool
	MaxAge           time.Duration
}

// Scoring tunes what the gateway gathers for the scorer and how it caches
// scores.
type Scoring struct {
	// SensitivePaths are the paths, as configured, whose requests count
	// as sensitive-path pressure; a set. A request's path is compared by
	// its route's equivalence (Route.Equivalence).
	SensitivePaths map[string]bool
	// VisitWindow is the fixed window of the visit counter (seed 002).
	VisitWindow time.Duration
	// AssetExtensions tell page assets (counted apart from the behavioural
	// windows: package pathclass); empty, nothing is an asset.
	AssetExtensions pathclass.Assets
	// ProbePaths tell requests for well-known exploit and admin paths.
	ProbePaths *pathclass.Probes
	// CacheTTL is how long a client's score is reused; 0 disables the
	// cache (every request is scored).
	CacheTTL time.Duration
	// CacheTolerance is how far (a fraction) a count may move before a
	// cached score is recomputed.
	CacheTolerance float64
	// FastPath forwards a request without waiting for the scorer when the
	// scorer's own rules, with geo at its worst, cannot reach the throttle
	// threshold (package localscore).
	FastPath bool
}

// Route sends requests whose normalised path starts with Path (on a
// segment boundary) to Upstream.
type Route struct {
	Path        string
	Upstream    *url.URL
	StripPrefix bool
	Timeout     time.Duration // upstream response-header timeout
	Auth        string        // "", "api_key" or "jwt"
	RateLimit   Limit         // per client on this route; zero: none
	RawPath     bool          // path_normalization: raw — forward the path as sent
	// Equivalence says which spellings of a path name one resource behind
	// this route (never nil after Load): routing, login protection,
	// sensitive paths, key roles and features compare paths by its keys.
	Equivalence *pathnorm.Equivalence
	// MethodOverride passes method overrides (X-HTTP-Method-Override,
	// _method) to the upstream, and RBAC checks the methods they name;
	// without it the headers are removed and _method is refused where
	// roles are checked (package methodoverride).
	MethodOverride bool
}

// Redis holds the shared-state connection settings.
type Redis struct {
	URL      string
	Prefix   string
	FailMode FailMode
	Timeout  time.Duration
	// FallbackClients bounds what each gateway keeps in memory while Redis
	// is unreachable (fail_mode open): client states, local bans, local
	// rate-limit logs.
	FallbackClients int
}

// Mongo holds the event-history connection settings.
type Mongo struct {
	URI       string
	Database  string
	Retention time.Duration
	// WriteConcern is the events and audit collections' write concern:
	// "" leaves the URI's (w=...) or the driver's default, "majority", or
	// a number of members (at least 1: w=0 would lose events silently).
	WriteConcern string
}

// Scorer holds the scoring service's client settings.
type Scorer struct {
	Enabled  bool // false: no threat scoring (rate limits, lists and keys still apply)
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
	SpoolDir      string // events wait here while MongoDB is down; "" keeps them in memory only
	SpoolMaxBytes int64
	// AggregateWindow folds a client's repeated events (same type, route
	// and status) within it into one event with a count; 0 disables.
	AggregateWindow time.Duration
}

// file mirrors the YAML document. Durations are strings so that a bad one is
// reported with its key.
type file struct {
	Listen    string      `yaml:"listen"`
	GatewayID string      `yaml:"gateway_id"`
	Routes    []fileRoute `yaml:"routes"`
	// PathEquivalence is every route's equivalence unless it sets its own.
	PathEquivalence filePathEquivalence `yaml:"path_equivalence"`
	TrustedProxies  []string            `yaml:"trusted_proxies"`
	ClientIPHeader  string              `yaml:"client_ip_header"`
	Redis           struct {
		URL             string `yaml:"url"`
		Prefix          string `yaml:"prefix"`
		FailMode        string `yaml:"fail_mode"`
		Timeout         string `yaml:"timeout"`
		FallbackClients int    `yaml:"fallback_clients"`
	} `yaml:"redis"`
	Mongo struct {
		URI          string `yaml:"uri"`
		Database     string `yaml:"database"`
		Retention    string `yaml:"retention"`
		WriteConcern string `yaml:"write_concern"`
	} `yaml:"mongo"`
	Scorer struct {
		Enabled  *bool  `yaml:"enabled"`
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
		SensitivePaths  []string `yaml:"sensitive_paths"`
		VisitWindow     string   `yaml:"visit_window"`
		AssetExtensions []string `yaml:"asset_extensions"`
		ProbePaths      []string `yaml:"probe_paths"`
		CacheTTL        string   `yaml:"cache_ttl"`
		CacheTolerance  *float64 `yaml:"cache_tolerance"`
		FastPath        *bool    `yaml:"fast_path"`
	} `yaml:"scoring"`
	Events struct {
		QueueSize       int    `yaml:"queue_size"`
		BatchSize       int    `yaml:"batch_size"`
		FlushInterval   string `yaml:"flush_interval"`
		StreamMaxLen    int64  `yaml:"stream_max_len"`
		SpoolDir        string `yaml:"spool_dir"`
		SpoolMaxBytes   int64  `yaml:"spool_max_bytes"`
		AggregateWindow string `yaml:"aggregate_window"`
	} `yaml:"events"`
	Admin struct {
		Listen   string `yaml:"listen"`
		Token    string `yaml:"token"`
		Username string `yaml:"username"`
		Password string `yaml:"password"`
	} `yaml:"admin"`
	Lists struct {
		Allow []string `yaml:"allow"`
		Deny  []string `yaml:"deny"`
	} `yaml:"lists"`
	RateLimit struct {
		RequestsPerMinute int64     `yaml:"requests_per_minute"`
		Window            string    `yaml:"window"`
		PerKey            fileLimit `yaml:"per_key"`
	} `yaml:"rate_limit"`
	Audit struct {
		Requests     bool     `yaml:"requests"`
		CostPerBlock *float64 `yaml:"cost_per_block"`
	} `yaml:"audit"`
	APIKey struct {
		AuthPath         string                         `yaml:"auth_path"`
		AuthUpstream     string                         `yaml:"auth_upstream"`
		KeyTTL           string                         `yaml:"key_ttl"`
		RoleAttribute    string                         `yaml:"role_attribute"`
		InvalidWindow    string                         `yaml:"invalid_window"`
		InvalidThreshold int                            `yaml:"invalid_threshold"`
		BlockDuration    string                         `yaml:"block_duration"`
		Permissions      map[string]map[string][]string `yaml:"permissions"`
	} `yaml:"api_key"`
	JWT struct {
		PrincipalClaim string       `yaml:"principal_claim"`
		Issuer         string       `yaml:"issuer"`
		Audience       string       `yaml:"audience"`
		Leeway         string       `yaml:"leeway"`
		RequireExp     *bool        `yaml:"require_exp"`
		JWKSFile       string       `yaml:"jwks_file"`
		ReloadInterval string       `yaml:"reload_interval"`
		Keys           []fileJWTKey `yaml:"keys"`
	} `yaml:"jwt"`
	Login struct {
		Routes []struct {
			Path          string `yaml:"path"`
			LoginField    string `yaml:"login_field"`
			PasswordField string `yaml:"password_field"`
		} `yaml:"routes"`
		Login         fileBucket `yaml:"login"`
		Password      fileBucket `yaml:"password"`
		IP            fileBucket `yaml:"ip"`
		Failures      int        `yaml:"failures"`
		FailureWindow string     `yaml:"failure_window"`
		// DuplicateFields: "last" (default) or "first", the value of a
		// login field named twice that the upstream reads.
		DuplicateFields string `yaml:"duplicate_fields"`
		Block           string `yaml:"block"`
	} `yaml:"login_protection"`
	MaxBodySize         int64  `yaml:"max_body_size"`
	BodyBufferSize      int64  `yaml:"body_buffer_size"`
	BodyBufferMemory    int64  `yaml:"body_buffer_memory"`
	MaxHeaderBytes      int    `yaml:"max_header_bytes"`
	MaxHeaderCount      int    `yaml:"max_header_count"`
	ReadHeaderTimeout   string `yaml:"read_header_timeout"`
	MaxTunnelsPerClient int    `yaml:"max_tunnels_per_client"`
	CORS                struct {
		AllowOrigins     []string `yaml:"allow_origins"`
		AllowMethods     []string `yaml:"allow_methods"`
		AllowHeaders     []string `yaml:"allow_headers"`
		AllowCredentials bool     `yaml:"allow_credentials"`
		MaxAge           string   `yaml:"max_age"`
	} `yaml:"cors"`
	Connections struct {
		Max         int    `yaml:"max"`
		PerAddress  int    `yaml:"per_address"`
		IdleTimeout string `yaml:"idle_timeout"`
	} `yaml:"connections"`
	ShutdownTimeout string `yaml:"shutdown_timeout"`
}

type fileRoute struct {
	Path        string    `yaml:"path"`
	Upstream    string    `yaml:"upstream"`
	Target      string    `yaml:"target"` // seed 001's name for upstream
	StripPrefix bool      `yaml:"strip_prefix"`
	Timeout     string    `yaml:"timeout"`
	Auth        string    `yaml:"auth"`
	RateLimit   fileLimit `yaml:"rate_limit"`
	PathNorm    string    `yaml:"path_normalization"`
	// PathEquivalence overrides the top-level path_equivalence for this
	// route, key by key.
	PathEquivalence filePathEquivalence `yaml:"path_equivalence"`
	// MethodOverride is decoded as any so that a value that is not a
	// boolean (yes, "true") is refused with its key, not taken for one.
	MethodOverride any `yaml:"method_override"`
}

// filePathEquivalence is pathnorm.Equivalence in YAML; an absent key keeps
// the default's (or, on a route, the top level's) value.
type filePathEquivalence struct {
	CaseInsensitive *bool     `yaml:"case_insensitive"`
	TrailingDots    *bool     `yaml:"trailing_dots"`
	Params          *bool     `yaml:"params"`
	FormatSuffixes  *[]string `yaml:"format_suffixes"`
}

// over returns base with e's keys applied; key names where e sits, for
// errors.
func (e filePathEquivalence) over(base *pathnorm.Equivalence, key string, bad func(key, format string, args ...any)) *pathnorm.Equivalence {
	out := *base
	if e.CaseInsensitive != nil {
		out.Fold = *e.CaseInsensitive
	}
	if e.TrailingDots != nil {
		out.TrimDots = *e.TrailingDots
	}
	if e.Params != nil {
		out.DropParams = *e.Params
	}
	if e.FormatSuffixes != nil {
		out.Suffixes = nil
		for i, s := range *e.FormatSuffixes {
			s = strings.ToLower(s)
			if len(s) < 2 || s[0] != '.' || strings.ContainsAny(s[1:], "./; ") {
				bad(fmt.Sprintf("%s.format_suffixes[%d]", key, i), `must be a dot and a name without '.', '/', ';' or spaces, like ".json", got %q`, s)
				continue
			}
			out.Suffixes = append(out.Suffixes, s)
		}
	}
	if e == (filePathEquivalence{}) {
		return base // one pointer for every route that keeps the top level's
	}
	return &out
}

type fileJWTKey struct {
	KID       string `yaml:"kid"`
	Alg       string `yaml:"alg"`
	Secret    string `yaml:"secret"`     // HS256
	PublicKey string `yaml:"public_key"` // PEM: RS256, ES256, EdDSA
}

type fileLimit struct {
	Requests int64  `yaml:"requests"`
	Window   string `yaml:"window"`
}

type fileBucket struct {
	Rate     int    `yaml:"rate"`
	Interval string `yaml:"interval"`
}

func defaults() file {
	var f file
	f.Listen = ":8080"
	f.Redis.URL = "redis://127.0.0.1:6379/0"
	f.Redis.Prefix = "bw:"
	f.Redis.FailMode = string(FailOpen)
	f.Redis.Timeout = "100ms"
	f.Redis.FallbackClients = 100_000
	f.Mongo.URI = "mongodb://127.0.0.1:27017"
	f.Mongo.Database = "bulwark"
	f.Mongo.Retention = "720h"
	f.Scorer.URL = "http://127.0.0.1:8081"
	f.Scorer.Timeout = "50ms"
	f.Scorer.FailMode = string(FailOpen)
	f.BanTTL = "10m"
	f.Scoring.SensitivePaths = []string{"/auth", "/login", "/api/login", "/api/register", "/checkout", "/api/checkout"}
	f.Scoring.VisitWindow = "60s"
	f.Scoring.AssetExtensions = slices.Clone(pathclass.DefaultAssetExtensions)
	f.Scoring.ProbePaths = slices.Clone(pathclass.DefaultProbePaths)
	f.Scoring.CacheTTL = "1s"
	f.Events.QueueSize = 10000
	f.Events.BatchSize = 200
	f.Events.FlushInterval = "200ms"
	f.Events.StreamMaxLen = 10000
	f.Events.SpoolMaxBytes = 1 << 30
	f.Events.AggregateWindow = "1s"
	f.Admin.Listen = "127.0.0.1:9090"
	f.RateLimit.RequestsPerMinute = 0
	// A principal's volume is this limit's business (the score leaves it
	// out): on by default, so a leaked key cannot flood.
	f.RateLimit.PerKey = fileLimit{Requests: 6000, Window: "1m"}
	f.APIKey.AuthPath = "/auth"
	f.APIKey.KeyTTL = "24h"
	f.APIKey.InvalidWindow = "5s"
	f.APIKey.InvalidThreshold = 5
	f.APIKey.BlockDuration = "24h"
	f.JWT.PrincipalClaim = "sub"
	f.JWT.Leeway = "30s"
	f.JWT.ReloadInterval = "10s"
	f.Login.Login = fileBucket{10, "1m"}
	f.Login.Password = fileBucket{100, "1m"}
	f.Login.IP = fileBucket{1000, "1m"}
	f.Login.Failures = 8
	f.Login.FailureWindow = "10s"
	f.Login.Block = "1h"
	f.MaxBodySize = 10 << 20
	f.BodyBufferSize = 64 << 10
	f.BodyBufferMemory = 32 << 20
	f.MaxHeaderBytes = 64 << 10
	f.MaxHeaderCount = 100 // Envoy's default; browsers send about 15, CDNs and tracing add some 20
	f.ReadHeaderTimeout = "5s"
	f.MaxTunnelsPerClient = 16
	f.CORS.AllowMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	f.CORS.MaxAge = "10m"
	f.Connections.PerAddress = 256
	f.Connections.IdleTimeout = "30s"
	f.ShutdownTimeout = "10s"
	return f
}

// minHeaderCount is the least max_header_count allowed.
const minHeaderCount = 16

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
	EnvAdminListen    = "BULWARK_ADMIN_LISTEN"
	EnvAdminToken     = "BULWARK_ADMIN_TOKEN"
	EnvRedisTimeout   = "BULWARK_REDIS_TIMEOUT"
	EnvScorerTimeout  = "BULWARK_SCORER_TIMEOUT"
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
		expanded := expandEnv(string(data), getenv)
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
	set(&f.Redis.Timeout, EnvRedisTimeout)
	set(&f.Scorer.Timeout, EnvScorerTimeout)
	set(&f.Mongo.URI, EnvMongoURI)
	set(&f.Mongo.Database, EnvMongoDB)
	set(&f.Scorer.URL, EnvScorerURL)
	set(&f.GatewayID, EnvGatewayID)
	set(&f.Admin.Listen, EnvAdminListen)
	set(&f.Admin.Token, EnvAdminToken)
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
			FailMode:        mode("redis.fail_mode", f.Redis.FailMode),
			Timeout:         dur("redis.timeout", f.Redis.Timeout, time.Millisecond),
			FallbackClients: f.Redis.FallbackClients,
		},
		Mongo: Mongo{
			URI: f.Mongo.URI, Database: f.Mongo.Database,
			Retention:    dur("mongo.retention", f.Mongo.Retention, time.Hour),
			WriteConcern: f.Mongo.WriteConcern,
		},
		Scorer: Scorer{
			Enabled:  f.Scorer.Enabled == nil || *f.Scorer.Enabled,
			URL:      f.Scorer.URL,
			Timeout:  dur("scorer.timeout", f.Scorer.Timeout, time.Millisecond),
			FailMode: mode("scorer.fail_mode", f.Scorer.FailMode),
		},
		BanTTL: dur("ban_ttl", f.BanTTL, time.Second),
		Events: Events{
			QueueSize:       f.Events.QueueSize,
			BatchSize:       f.Events.BatchSize,
			FlushInterval:   dur("events.flush_interval", f.Events.FlushInterval, time.Millisecond),
			StreamMaxLen:    f.Events.StreamMaxLen,
			SpoolDir:        f.Events.SpoolDir,
			SpoolMaxBytes:   f.Events.SpoolMaxBytes,
			AggregateWindow: dur("events.aggregate_window", f.Events.AggregateWindow, 0),
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
	if c.Redis.FallbackClients < 2 {
		bad("redis.fallback_clients", "must be at least 2, got %d", c.Redis.FallbackClients)
	}
	limit := func(key string, l fileLimit) Limit {
		if l.Requests == 0 {
			return Limit{} // off
		}
		if l.Requests < 0 {
			bad(key+".requests", "must not be negative, got %d", l.Requests)
		}
		w := time.Minute
		if l.Window != "" {
			w = dur(key+".window", l.Window, time.Millisecond)
		}
		return Limit{Requests: l.Requests, Window: w}
	}
	bucket := func(key string, b fileBucket) Bucket {
		if b.Rate < 0 {
			bad(key+".rate", "must not be negative, got %d", b.Rate)
		}
		if b.Rate == 0 {
			return Bucket{} // off
		}
		if b.Interval == "" {
			b.Interval = "1m"
		}
		return Bucket{Rate: b.Rate, Interval: dur(key+".interval", b.Interval, time.Millisecond)}
	}
	checkURL := func(key, v string, schemes ...string) *url.URL {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
			bad(key, "must be an absolute %s URL, got %q", strings.Join(schemes, " or "), v)
			return nil
		}
		return u
	}
	if _, err := redisconn.Options(c.Redis.URL); err != nil {
		bad("redis.url", "%v", err)
	}
	if err := checkMongoURI(c.Mongo.URI); err != nil {
		bad("mongo.uri", "%v", err)
	}
	if wc := c.Mongo.WriteConcern; wc != "" && wc != "majority" {
		if n, err := strconv.Atoi(wc); err != nil || n < 1 {
			bad("mongo.write_concern", `must be "", "majority" or a number of members of at least 1, got %q`, wc)
		}
	}
	checkURL("scorer.url", c.Scorer.URL, "http", "https")
	if c.Mongo.Database == "" {
		bad("mongo.database", "must not be empty")
	}

	if len(f.Routes) == 0 {
		bad("routes", "at least one route is required (or set %s)", EnvUpstreamURL)
	}
	c.PathEquivalence = f.PathEquivalence.over(pathnorm.Lenient(), "path_equivalence", bad)
	seen := map[string]bool{}
	for i, r := range f.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Upstream == "" {
			r.Upstream = r.Target
		}
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
		route := Route{Path: r.Path, StripPrefix: r.StripPrefix, Auth: r.Auth, Timeout: 30 * time.Second,
			Equivalence: r.PathEquivalence.over(c.PathEquivalence, key+".path_equivalence", bad)}
		switch mo := r.MethodOverride.(type) {
		case nil:
		case bool:
			route.MethodOverride = mo
		case string:
			bad(key+".method_override", "must be true or false, got the string %q", mo)
		default:
			bad(key+".method_override", "must be true or false, got %v", mo)
		}
		if r.Timeout != "" {
			route.Timeout = dur(key+".timeout", r.Timeout, time.Millisecond)
		}
		if r.Auth != "" && r.Auth != "api_key" && r.Auth != "jwt" {
			bad(key+".auth", `must be "", "api_key" or "jwt", got %q`, r.Auth)
		}
		route.RateLimit = limit(key+".rate_limit", r.RateLimit)
		switch r.PathNorm {
		case "", "strict":
		case "raw":
			route.RawPath = true
			if r.StripPrefix {
				bad(key+".path_normalization", `"raw" forwards the path as sent and cannot be combined with strip_prefix`)
			}
		default:
			bad(key+".path_normalization", `must be "strict" or "raw", got %q`, r.PathNorm)
		}
		if u := checkURL(key+".upstream", r.Upstream, "http", "https"); u != nil {
			route.Upstream = u
			for _, other := range c.Routes {
				if route.Equivalence.RouteKey(route.Path) == route.Equivalence.RouteKey(other.Path) ||
					other.Equivalence.RouteKey(route.Path) == other.Equivalence.RouteKey(other.Path) {
					bad(key+".path", "%q is route %q under path_equivalence: one would never be matched", r.Path, other.Path)
				}
			}
			c.Routes = append(c.Routes, route)
		}
	}
	switch strings.ToLower(f.ClientIPHeader) {
	case "", "x-forwarded-for", "forwarded", "x-real-ip":
		c.ClientIPHeader = f.ClientIPHeader
	default:
		bad("client_ip_header", `must be "X-Forwarded-For", "Forwarded" or "X-Real-IP", got %q`, f.ClientIPHeader)
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
		c.Scoring.SensitivePaths[p] = true
	}
	c.Scoring.VisitWindow = dur("scoring.visit_window", f.Scoring.VisitWindow, time.Second)
	badEntry := func(key string, err error) {
		var e *pathclass.EntryError
		if errors.As(err, &e) {
			bad(fmt.Sprintf("%s[%d]", key, e.Index), "%s", e.Msg)
		} else if err != nil {
			bad(key, "%v", err)
		}
	}
	var err error
	c.Scoring.AssetExtensions, err = pathclass.ParseAssets(f.Scoring.AssetExtensions)
	badEntry("scoring.asset_extensions", err)
	c.Scoring.ProbePaths, err = pathclass.ParseProbes(f.Scoring.ProbePaths)
	badEntry("scoring.probe_paths", err)
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
	c.Scoring.FastPath = f.Scoring.FastPath == nil || *f.Scoring.FastPath
	if c.Events.QueueSize < 1 {
		bad("events.queue_size", "must be positive, got %d", c.Events.QueueSize)
	}
	if c.Events.BatchSize < 1 || c.Events.BatchSize > c.Events.QueueSize {
		bad("events.batch_size", "must be in [1, events.queue_size], got %d", c.Events.BatchSize)
	}
	if c.Events.SpoolMaxBytes < 1<<20 {
		bad("events.spool_max_bytes", "must be at least 1 MiB, got %d", c.Events.SpoolMaxBytes)
	}
	if c.Events.StreamMaxLen < 100 {
		bad("events.stream_max_len", "must be at least 100, got %d", c.Events.StreamMaxLen)
	}
	if c.Events.AggregateWindow > time.Minute {
		bad("events.aggregate_window", "must be at most 1m, got %s", f.Events.AggregateWindow)
	}
	// Admin API: never open without credentials.
	c.Admin = Admin{Listen: f.Admin.Listen, Token: f.Admin.Token, Username: f.Admin.Username, Password: f.Admin.Password}
	if c.Admin.Listen != "" {
		if _, _, err := splitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen", "%v", err)
		}
		if (c.Admin.Username == "") != (c.Admin.Password == "") {
			bad("admin.password", "admin.username and admin.password go together")
		}
	}
	lists := func(key string, in []string) []netip.Prefix {
		var out []netip.Prefix
		for i, s := range in {
			p, err := parsePrefix(s)
			if err != nil {
				bad(fmt.Sprintf("%s[%d]", key, i), "invalid CIDR or address %q", s)
				continue
			}
			out = append(out, p)
		}
		return out
	}
	c.Lists = Lists{Allow: lists("lists.allow", f.Lists.Allow), Deny: lists("lists.deny", f.Lists.Deny)}
	for _, a := range c.Lists.Allow {
		if slices.Contains(c.Lists.Deny, a) {
			bad("lists.deny", "%s is also in lists.allow", a)
		}
	}

	if f.RateLimit.RequestsPerMinute < 0 {
		bad("rate_limit.requests_per_minute", "must not be negative, got %d", f.RateLimit.RequestsPerMinute)
	}
	c.RateLimit = RateLimit{RequestsPerMinute: f.RateLimit.RequestsPerMinute, Window: time.Minute, PerKey: limit("rate_limit.per_key", f.RateLimit.PerKey)}
	if f.RateLimit.Window != "" {
		c.RateLimit.Window = dur("rate_limit.window", f.RateLimit.Window, time.Millisecond)
	}
	c.AuditRequests = f.Audit.Requests
	c.CostPerBlock = 0.45
	if f.Audit.CostPerBlock != nil {
		c.CostPerBlock = *f.Audit.CostPerBlock
	}
	if c.CostPerBlock < 0 {
		bad("audit.cost_per_block", "must not be negative, got %v", c.CostPerBlock)
	}

	ak := f.APIKey
	c.APIKey = APIKey{
		AuthPath: ak.AuthPath, RoleAttribute: ak.RoleAttribute,
		KeyTTL:           dur("api_key.key_ttl", ak.KeyTTL, time.Second),
		InvalidWindow:    dur("api_key.invalid_window", ak.InvalidWindow, time.Millisecond),
		InvalidThreshold: ak.InvalidThreshold,
		BlockFor:         dur("api_key.block_duration", ak.BlockDuration, time.Second),
		Permissions:      ak.Permissions,
	}
	if ak.InvalidThreshold < 1 {
		bad("api_key.invalid_threshold", "must be positive, got %d", ak.InvalidThreshold)
	}
	if ak.AuthPath != "" && !strings.HasPrefix(ak.AuthPath, "/") {
		bad("api_key.auth_path", "must start with '/', got %q", ak.AuthPath)
	}
	if ak.AuthUpstream != "" {
		c.APIKey.AuthUpstream = checkURL("api_key.auth_upstream", ak.AuthUpstream, "http", "https")
	}
	for ep, methods := range ak.Permissions {
		for m := range methods {
			if m != strings.ToUpper(m) || m == "" {
				bad("api_key.permissions."+ep+"."+m, "methods are upper-case HTTP methods")
			}
		}
	}
	needsKeys := false
	for _, r := range c.Routes {
		needsKeys = needsKeys || r.Auth == "api_key"
	}
	if needsKeys && c.APIKey.AuthUpstream == nil {
		bad("api_key.auth_upstream", "required when a route has auth: api_key")
	}
	c.JWT = f.jwt(bad, dur)
	for i, r := range f.Routes {
		if r.Auth == "jwt" && !c.JWT.Enabled() {
			bad(fmt.Sprintf("routes[%d].auth", i), "jwt needs the jwt section: jwt.keys or jwt.jwks_file")
		}
	}

	lp := f.Login
	c.Login = Login{
		LoginBucket:   bucket("login_protection.login", lp.Login),
		PassBucket:    bucket("login_protection.password", lp.Password),
		IPBucket:      bucket("login_protection.ip", lp.IP),
		Failures:      lp.Failures,
		FailureWindow: dur("login_protection.failure_window", lp.FailureWindow, time.Millisecond),
		LockFor:       dur("login_protection.block", lp.Block, time.Second),
	}
	if lp.Failures < 1 {
		bad("login_protection.failures", "must be positive, got %d", lp.Failures)
	}
	if d, ok := loginname.ParseDuplicates(lp.DuplicateFields); ok {
		c.Login.Duplicates = d
	} else {
		bad("login_protection.duplicate_fields", `must be "last" or "first", got %q`, lp.DuplicateFields)
	}
	for i, r := range lp.Routes {
		key := fmt.Sprintf("login_protection.routes[%d]", i)
		if !strings.HasPrefix(r.Path, "/") {
			bad(key+".path", "must start with '/', got %q", r.Path)
		}
		lr := LoginRoute{Path: r.Path, LoginField: r.LoginField, PasswordField: r.PasswordField}
		if lr.LoginField == "" {
			lr.LoginField = "username"
		}
		if lr.PasswordField == "" {
			lr.PasswordField = "password"
		}
		c.Login.Routes = append(c.Login.Routes, lr)
	}

	c.Edge = Edge{
		MaxBodyBytes: f.MaxBodySize, MaxHeaderBytes: f.MaxHeaderBytes, MaxHeaderCount: f.MaxHeaderCount,
		BodyBufferBytes: f.BodyBufferSize, BodyBufferMemory: f.BodyBufferMemory,
		MaxTunnelsPerClient: f.MaxTunnelsPerClient,
		ReadHeaderTimeout:   dur("read_header_timeout", f.ReadHeaderTimeout, time.Millisecond),
		CORS: CORS{
			AllowOrigins: f.CORS.AllowOrigins, AllowMethods: f.CORS.AllowMethods, AllowHeaders: f.CORS.AllowHeaders,
			AllowCredentials: f.CORS.AllowCredentials, MaxAge: dur("cors.max_age", f.CORS.MaxAge, 0),
		},
	}
	if f.MaxBodySize < 1 {
		bad("max_body_size", "must be positive, got %d", f.MaxBodySize)
	}
	if f.BodyBufferSize < 1024 {
		bad("body_buffer_size", "must be at least 1024, got %d", f.BodyBufferSize)
	}
	if f.BodyBufferMemory < f.BodyBufferSize {
		bad("body_buffer_memory", "must be at least body_buffer_size (%d), got %d", f.BodyBufferSize, f.BodyBufferMemory)
	}
	if f.MaxHeaderBytes < 1024 {
		bad("max_header_bytes", "must be at least 1024, got %d", f.MaxHeaderBytes)
	}
	if f.MaxHeaderCount < minHeaderCount {
		bad("max_header_count", "must be at least %d (a browser alone sends about 15 header fields), got %d", minHeaderCount, f.MaxHeaderCount)
	}
	if f.MaxTunnelsPerClient < 0 {
		bad("max_tunnels_per_client", "must not be negative (0 turns the cap off), got %d", f.MaxTunnelsPerClient)
	}
	for i, o := range f.CORS.AllowOrigins {
		if o == "*" && f.CORS.AllowCredentials {
			bad(fmt.Sprintf("cors.allow_origins[%d]", i), `"*" cannot be combined with allow_credentials: list the origins`)
		}
	}
	fc := f.Connections
	c.Edge.Connections = Connections{Max: fc.Max, PerAddress: fc.PerAddress,
		IdleTimeout: dur("connections.idle_timeout", fc.IdleTimeout, time.Second)}
	if fc.Max < 0 {
		bad("connections.max", "must not be negative (0 derives it from the open-file limit), got %d", fc.Max)
	}
	switch {
	case fc.PerAddress < 0:
		bad("connections.per_address", "must not be negative (0 turns it off), got %d", fc.PerAddress)
	case fc.Max > 0 && fc.PerAddress > fc.Max:
		bad("connections.per_address", "must be at most connections.max (%d), got %d", fc.Max, fc.PerAddress)
	}
	c.ShutdownTimeout = dur("shutdown_timeout", f.ShutdownTimeout, 100*time.Millisecond)

	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid config:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// jwt validates the jwt section: every key parsed against its alg, kids
// unique and present when there are several keys (the JWKS file's too).
func (f *file) jwt(bad func(key, format string, args ...any), dur func(key, v string, min time.Duration) time.Duration) JWT {
	fj := f.JWT
	j := JWT{
		PrincipalClaim: fj.PrincipalClaim, Issuer: fj.Issuer, Audience: fj.Audience,
		Leeway:         dur("jwt.leeway", fj.Leeway, 0),
		RequireExp:     fj.RequireExp == nil || *fj.RequireExp,
		JWKSFile:       fj.JWKSFile,
		ReloadInterval: dur("jwt.reload_interval", fj.ReloadInterval, 100*time.Millisecond),
	}
	if j.PrincipalClaim == "" {
		bad("jwt.principal_claim", "must not be empty")
	}
	kids := map[string]string{} // kid → the key that has it
	several := len(fj.Keys) > 1
	var fileKeys []jwtauth.Key
	if fj.JWKSFile != "" {
		var err error
		if fileKeys, err = jwtauth.ReadJWKS(fj.JWKSFile); err != nil {
			bad("jwt.jwks_file", "%v", err)
		}
		several = len(fj.Keys)+len(fileKeys) > 1
	}
	for i, fk := range fj.Keys {
		key := fmt.Sprintf("jwt.keys[%d]", i)
		var k jwtauth.Key
		var err error
		field := ".public_key"
		switch {
		case !jwtauth.KnownAlg(fk.Alg):
			bad(key+".alg", "must be HS256, RS256, ES256 or EdDSA, got %q", fk.Alg)
			continue
		case fk.Alg == jwtauth.HS256:
			field = ".secret"
			if fk.PublicKey != "" {
				bad(key+".public_key", "HS256 takes a secret, not a public key")
			}
			k, err = jwtauth.NewHMACKey(fk.KID, []byte(fk.Secret))
		default:
			if fk.Secret != "" {
				bad(key+".secret", "%s takes a public_key, not a secret", fk.Alg)
			}
			k, err = jwtauth.ParsePublicKey(fk.KID, fk.Alg, []byte(fk.PublicKey))
		}
		if err != nil {
			bad(key+field, "%v", err)
			continue
		}
		switch {
		case fk.KID == "" && several:
			bad(key+".kid", "required when there are several keys (here and in jwt.jwks_file)")
		case fk.KID == "":
		case kids[fk.KID] != "":
			bad(key+".kid", "duplicate kid %q (also %s)", fk.KID, kids[fk.KID])
		default:
			kids[fk.KID] = key
		}
		j.Keys = append(j.Keys, k)
	}
	for i, k := range fileKeys {
		switch {
		case k.ID == "" && several:
			bad("jwt.jwks_file", "%s: key %d has no kid: with several keys every key needs one", fj.JWKSFile, i)
		case k.ID != "" && kids[k.ID] != "":
			bad("jwt.jwks_file", "%s: kid %q is also %s", fj.JWKSFile, k.ID, kids[k.ID])
		}
	}
	return j
}

// Enabled reports whether the admin API is served: never without credentials.
func (a Admin) Enabled() bool {
	return a.Listen != "" && (a.Token != "" || a.Username != "")
}

// Redacted returns the config with every secret replaced, for the admin API.
func (c *Config) Redacted() map[string]any {
	secret := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	routes := make([]map[string]any, len(c.Routes))
	for i, r := range c.Routes {
		norm := "strict"
		if r.RawPath {
			norm = "raw"
		}
		routes[i] = map[string]any{"path": r.Path, "target": r.Upstream.Redacted(), "strip_prefix": r.StripPrefix,
			"timeout": r.Timeout.String(), "auth": r.Auth, "rate_limit": r.RateLimit, "path_normalization": norm,
			"method_override": r.MethodOverride}
	}
	return map[string]any{
		"listen": c.Listen, "gateway_id": c.GatewayID, "routes": routes,
		"trusted_proxies": c.TrustedProxies, "client_ip_header": c.ClientIPHeader,
		"redis":      map[string]any{"url": redactURL(c.Redis.URL), "prefix": c.Redis.Prefix, "fail_mode": c.Redis.FailMode, "timeout": c.Redis.Timeout.String(), "fallback_clients": c.Redis.FallbackClients},
		"mongo":      map[string]any{"uri": redactURL(c.Mongo.URI), "database": c.Mongo.Database, "retention": c.Mongo.Retention.String(), "write_concern": c.Mongo.WriteConcern},
		"scorer":     map[string]any{"enabled": c.Scorer.Enabled, "url": redactURL(c.Scorer.URL), "timeout": c.Scorer.Timeout.String(), "fail_mode": c.Scorer.FailMode},
		"thresholds": map[string]any{"block": c.BlockAt, "throttle": c.ThrottleAt},
		"ban_ttl":    c.BanTTL.String(), "shadow": c.Shadow,
		"admin":      map[string]any{"listen": c.Admin.Listen, "token": secret(c.Admin.Token), "username": c.Admin.Username, "password": secret(c.Admin.Password)},
		"lists":      map[string]any{"allow": c.Lists.Allow, "deny": c.Lists.Deny},
		"rate_limit": map[string]any{"requests_per_minute": c.RateLimit.RequestsPerMinute, "per_key": c.RateLimit.PerKey},
		"api_key": map[string]any{"auth_path": c.APIKey.AuthPath, "key_ttl": c.APIKey.KeyTTL.String(), "role_attribute": c.APIKey.RoleAttribute,
			"invalid_window": c.APIKey.InvalidWindow.String(), "invalid_threshold": c.APIKey.InvalidThreshold, "block_duration": c.APIKey.BlockFor.String(),
			"permissions": c.APIKey.Permissions},
		"jwt":              c.JWT.redacted(),
		"login_protection": c.Login,
		"max_body_size":    c.Edge.MaxBodyBytes,
		"body_buffer_size": c.Edge.BodyBufferBytes, "body_buffer_memory": c.Edge.BodyBufferMemory,
		"max_tunnels_per_client": c.Edge.MaxTunnelsPerClient,
		"cors":                   c.Edge.CORS,
		"connections": map[string]any{"max": c.Edge.Connections.Max, "per_address": c.Edge.Connections.PerAddress,
			"idle_timeout": c.Edge.Connections.IdleTimeout.String()},
		"shutdown_timeout": c.ShutdownTimeout.String(),
	}
}

// redacted lists the jwt settings; keys by kid and alg only (a secret's
// material never leaves jwtauth.Key).
func (j JWT) redacted() map[string]any {
	keys := make([]map[string]any, len(j.Keys))
	for i, k := range j.Keys {
		keys[i] = map[string]any{"kid": k.ID, "alg": k.Alg}
		if k.Alg == jwtauth.HS256 {
			keys[i]["secret"] = "[redacted]"
		}
	}
	return map[string]any{
		"enabled": j.Enabled(), "principal_claim": j.PrincipalClaim, "issuer": j.Issuer, "audience": j.Audience,
		"leeway": j.Leeway.String(), "require_exp": j.RequireExp, "jwks_file": j.JWKSFile,
		"reload_interval": j.ReloadInterval.String(), "keys": keys,
	}
}

// redactURL hides a password inside a connection URL.
// checkMongoURI accepts what the driver accepts: a mongodb:// URI is parsed
// by the driver itself (several hosts, as a replica set URI has, are more
// than net/url takes: "h1:27017,h2"); a mongodb+srv:// one names one host
// without a port, and its DNS records are looked up at connect, not here.
// The errors never repeat the URI, which may hold a password.
func checkMongoURI(s string) error {
	switch {
	case strings.HasPrefix(s, "mongodb://"):
		if _, err := connstring.ParseAndValidate(s); err != nil {
			return errors.New(strings.ReplaceAll(err.Error(), s, "[uri]"))
		}
		return nil
	case strings.HasPrefix(s, "mongodb+srv://"):
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" || u.Port() != "" || strings.Contains(u.Host, ",") {
			return errors.New("a mongodb+srv URI names one host name, without a port")
		}
		return nil
	}
	return errors.New("must be a mongodb:// or mongodb+srv:// URI")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparseable]"
	}
	return u.Redacted()
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} with the variable's value and $$ with $; any
// other $ is left alone, so secrets and patterns keep their dollars.
func expandEnv(s string, getenv func(string) string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		return getenv(m[2 : len(m)-1])
	})
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
