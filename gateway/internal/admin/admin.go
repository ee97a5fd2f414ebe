// Package admin is the gateway's operator API: reload and inspect the
// configuration, inspect and clear rate limits, edit the allow and deny
// lists, ban and unban clients, reset login/password/IP buckets, revoke API
// keys and query the audit log. It runs on its own listener, always behind
// authentication (bearer token and/or HTTP Basic, with a per-IP lockout),
// and keeps the seeds' /admin/... and /audit/... paths as aliases with their
// exact response shapes next to the REST-style /v1/admin/... paths.
//
// The package owns the small interfaces it calls; the domain packages
// (lists, ratelimit, bans, apikey, bruteforce) satisfy them, and their
// expected failures reach the client through the sentinel errors in Errors.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Deps are the admin API's collaborators. Every field is required except
// Metrics, Lockout, BanTTL and Now.
type Deps struct {
	Auth    Auth    // who may call the API; at least one scheme must be set
	Lockout Lockout // failed-authentication lockout; zero fields take defaults

	Reload func(ctx context.Context) (Summary, error) // validate, then swap; error text names the invalid key
	Routes func() []Route                             // the active routes
	Config func() any                                 // the active config, secrets already redacted
	Status func(ctx context.Context) Status           // routes and rate limit; admin fills Status and Audit

	RateLimit RateLimitAdmin
	Lists     ListsAdmin
	Bans      BansAdmin
	Buckets   BucketsAdmin
	Keys      KeysAdmin
	Errors    Errors // the domain packages' sentinel errors, mapped to status codes

	Audit    AuditSink // records every state-changing action and every auth failure
	AuditLog AuditLog  // reads the audit log

	Metrics http.Handler  // optional: served as GET /metrics, behind the same auth
	BanTTL  time.Duration // ban length when POST /v1/admin/bans has no ttl; default 24h
	Log     *slog.Logger
	Now     func() time.Time // default time.Now
}

// Summary is what a successful reload reports.
type Summary struct {
	RoutesCount int
	RateLimit   int64 // requests per minute
}

// Route is one configured route.
type Route struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// Status is GET /admin/status: seed 001's shape. Deps.Status fills
// RoutesCount and RateLimit; the package sets Status and Audit.
type Status struct {
	Status      string          `json:"status"`
	RoutesCount int             `json:"routes_count"`
	RateLimit   RateLimitStatus `json:"rate_limit"`
	Audit       AuditStats      `json:"audit"`
}

// RateLimitStatus is the active proxy rate limit.
type RateLimitStatus struct {
	RequestsPerMinute int64 `json:"requests_per_minute"`
	WindowSize        int   `json:"window_size"` // seconds; 60 when left zero
}

// RateLimitAdmin inspects and clears one client's proxy rate-limit window.
type RateLimitAdmin interface {
	Stats(ctx context.Context, ip netip.Addr) (inWindow, limit int64, err error)
	Clear(ctx context.Context, ip netip.Addr) (cleared bool, err error)
}

// ListKind names the allow list (seed 003's whitelist) or the deny list
// (its blacklist).
type ListKind string

// The two lists.
const (
	Allow ListKind = "allow"
	Deny  ListKind = "deny"
)

// ListEntry is one CIDR on a list. Static entries come from the config file
// and cannot be removed through the API.
type ListEntry struct {
	CIDR   string `json:"cidr"`
	Static bool   `json:"static"`
}

// ListsAdmin edits the allow and deny lists. The CIDR is passed as the
// client sent it: the implementation parses it (Errors.Invalid), stores the
// network address and reports it (10.1.2.3/8 → 10.0.0.0/8), and refuses
// duplicates (Errors.Exists), a subnet already on the other list
// (Errors.Conflict), removing what is absent (Errors.NotFound) and removing
// config-file entries (Errors.Static).
type ListsAdmin interface {
	Add(ctx context.Context, kind ListKind, cidr string) (normalized string, err error)
	Remove(ctx context.Context, kind ListKind, cidr string) error
	List(ctx context.Context, kind ListKind) ([]ListEntry, error)
}

// Ban is one banned client.
type Ban struct {
	IP        netip.Addr // the client's clientid.Identity
	Reason    string
	ExpiresAt time.Time
}

// BansAdmin lists, adds and lifts bans. The package passes every client as
// its clientid.Identity (an IPv6 /64 as its first address) and shows it as
// clientid.Display spells it.
type BansAdmin interface {
	List(ctx context.Context) ([]Ban, error)
	Add(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string) error
	Remove(ctx context.Context, ip netip.Addr) (removed bool, err error)
}

// BucketsAdmin resets the login limiter's buckets (seed 003). A bucket that
// does not exist is Errors.NotFound.
type BucketsAdmin interface {
	ResetLogin(ctx context.Context, login string) error
	ResetPassword(ctx context.Context, password string) error
	ResetIP(ctx context.Context, ip netip.Addr) error
}

// KeysAdmin revokes issued API keys. An unknown id is Errors.NotFound.
type KeysAdmin interface {
	Revoke(ctx context.Context, id string) error
}

// Errors are the domain packages' sentinel errors. A returned error is
// matched with errors.Is against each; nil fields never match.
type Errors struct {
	Invalid  error // 400: malformed input (e.g. a CIDR)
	Exists   error // 409: already on that list
	Conflict error // 409: on the other list
	NotFound error // 404: no such bucket, subnet or key
	Static   error // 409: defined in the config file, not removable here
	// Unavailable reports an error that says a dependency (Redis) cannot
	// be reached now: 503 with Retry-After, not a 500, so scripts retry.
	Unavailable func(error) bool
}

// AuditSink records an admin action; the caller turns it into an audit
// event (client IP, method, path and user agent come from r).
type AuditSink interface {
	Record(action, details string, r *http.Request)
}

// Audit actions recorded by this package.
const (
	ActionConfigReload       = "config_reload"
	ActionConfigReloadFailed = "config_reload_failed"
	ActionRateLimitClear     = "rate_limit_clear"
	ActionListAdd            = "list_add"
	ActionListRemove         = "list_remove"
	ActionBanAdd             = "ban_add"
	ActionBanRemove          = "ban_remove"
	ActionBucketReset        = "bucket_reset"
	ActionKeyRevoke          = "key_revoke"
	ActionAuthFailed         = "auth_failed"
)

// AuditLog queries the audit log.
type AuditLog interface {
	Logs(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	Stats(ctx context.Context) (AuditStats, error)
}

// AuditFilter selects audit entries, newest first. The package guarantees
// 1 ≤ Limit ≤ 1000 and Offset ≥ 0; empty strings do not filter.
type AuditFilter struct {
	Limit     int
	Offset    int
	EventType string
	ClientIP  string // one address, as the entries spell it
	// ClientPattern is a regular expression the entry's client IP must
	// match (clientid.TextPattern: every address of an IPv6 /64).
	ClientPattern string
}

// AuditStats counts the audit log.
type AuditStats struct {
	TotalEntries     int64 `json:"total_entries"`
	RequestCount     int64 `json:"request_count"`
	AdminActionCount int64 `json:"admin_action_count"`
}

func (d *Deps) validate() error {
	var errs []error
	missing := func(ok bool, name string) {
		if !ok {
			errs = append(errs, errors.New("admin: missing dependency "+name))
		}
	}
	if err := d.Auth.validate(); err != nil {
		errs = append(errs, err)
	}
	missing(d.Reload != nil, "Reload")
	missing(d.Routes != nil, "Routes")
	missing(d.Config != nil, "Config")
	missing(d.Status != nil, "Status")
	missing(d.RateLimit != nil, "RateLimit")
	missing(d.Lists != nil, "Lists")
	missing(d.Bans != nil, "Bans")
	missing(d.Buckets != nil, "Buckets")
	missing(d.Keys != nil, "Keys")
	missing(d.Audit != nil, "Audit")
	missing(d.AuditLog != nil, "AuditLog")
	missing(d.Log != nil, "Log")
	if d.BanTTL < 0 {
		errs = append(errs, errors.New("admin: BanTTL must not be negative"))
	}
	if err := d.Lockout.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
