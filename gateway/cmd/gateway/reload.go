package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/bruteforce"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/connlimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
)

// reloader is the one way configuration changes at run time: the admin
// API, SIGHUP and a change of the file all call reload, which validates the
// whole file and then swaps. A bad file keeps the old configuration.
type reloader struct {
	path    string
	getenv  func(string) string
	gw      *server.Gateway
	lists   *lists.Store
	guard   *bruteforce.Guard
	conns   *connlimit.Limiter
	jwt     *jwtauth.Verifier // nil: JWT is off (turning it on needs a restart)
	tunnels *tunnels.Registry // nil: no tunnels to close
	log     *slog.Logger

	mu      sync.Mutex
	modTime time.Time
	size    int64
}

func (r *reloader) reload() (*config.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, err := os.Stat(r.path); err == nil {
		r.modTime, r.size = st.ModTime(), st.Size()
	}
	old := r.gw.Config()
	cfg, err := config.Load(r.path, r.getenv)
	if err == nil {
		err = restartOnly(old, cfg)
	}
	if err != nil {
		r.log.Warn("config reload refused", "err", err)
		return nil, err
	}
	// Validate every part first, then swap: a failure changes nothing.
	gc := guardConfig(cfg)
	if err := gc.Validate(); err != nil {
		return nil, fmt.Errorf("login_protection: %w", err)
	}
	static := lists.Static{Allow: cfg.Lists.Allow, Deny: cfg.Lists.Deny}
	if err := static.Validate(); err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	if err := r.gw.Reload(cfg); err != nil {
		return nil, err
	}
	if err := r.guard.SetConfig(gc); err != nil {
		r.log.Error("login protection not reloaded after validation", "err", err)
	}
	if err := r.lists.SetStatic(static); err != nil {
		r.log.Error("lists not reloaded after validation", "err", err)
	}
	if r.tunnels != nil {
		// A network the file now denies closes the tunnels it covers
		// (each gateway reloads its own file).
		for _, p := range cfg.Lists.Deny {
			if !slices.Contains(old.Lists.Deny, p) {
				r.tunnels.ClosePrefix(p)
			}
		}
	}
	if r.conns != nil {
		r.conns.SetExempt(cfg.TrustedProxies) // a proxy meets only the global limit
	}
	if r.jwt != nil {
		// New settings and keys, and the JWKS file read again.
		if err := r.jwt.Configure(jwtOptions(cfg.JWT)); err != nil {
			r.log.Error("jwt not reloaded after validation; the old keys stay in use", "err", err)
		}
	}
	r.log.Info("config reloaded", "routes", len(cfg.Routes))
	return cfg, nil
}

// watch reloads on SIGHUP and when the file's size or modification time
// changes (polled: no platform-specific watcher needed).
func (r *reloader) watch(ctx context.Context, sighup <-chan os.Signal, every time.Duration) {
	if r.path == "" {
		return
	}
	if st, err := os.Stat(r.path); err == nil {
		r.mu.Lock()
		r.modTime, r.size = st.ModTime(), st.Size()
		r.mu.Unlock()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sighup:
			_, _ = r.reload()
		case <-t.C:
			st, err := os.Stat(r.path)
			if err != nil {
				continue
			}
			r.mu.Lock()
			changed := !st.ModTime().Equal(r.modTime) || st.Size() != r.size
			r.mu.Unlock()
			if changed {
				_, _ = r.reload()
			}
		}
	}
}

// restartOnly refuses a reload that changes what only a restart can change
// (listeners, connections, credentials held by long-lived clients), naming
// each key, instead of reporting a success that did not happen.
func restartOnly(old, next *config.Config) error {
	var keys []string
	check := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	check("listen", old.Listen != next.Listen)
	check("admin", old.Admin != next.Admin)
	check("redis", old.Redis != next.Redis)
	check("mongo", old.Mongo != next.Mongo)
	check("scorer.url", old.Scorer.URL != next.Scorer.URL)
	check("scorer.timeout", old.Scorer.Timeout != next.Scorer.Timeout)
	check("api_key.key_ttl", old.APIKey.KeyTTL != next.APIKey.KeyTTL)
	check("scoring.cache_ttl", old.Scoring.CacheTTL != next.Scoring.CacheTTL)
	check("scoring.cache_tolerance", old.Scoring.CacheTolerance != next.Scoring.CacheTolerance)
	check("events", old.Events != next.Events)
	check("max_header_bytes", old.Edge.MaxHeaderBytes != next.Edge.MaxHeaderBytes)
	check("max_header_count", old.Edge.MaxHeaderCount != next.Edge.MaxHeaderCount)
	check("read_header_timeout", old.Edge.ReadHeaderTimeout != next.Edge.ReadHeaderTimeout)
	check("connections", old.Edge.Connections != next.Edge.Connections)
	check("shutdown_timeout", old.ShutdownTimeout != next.ShutdownTimeout)
	// The verifier is built (or not) at start: turning JWT on or off, or
	// changing how often its JWKS file is polled, needs a restart; its
	// keys and claims reload.
	check("jwt (on or off)", old.JWT.Enabled() != next.JWT.Enabled())
	check("jwt.reload_interval", old.JWT.Enabled() && next.JWT.Enabled() && old.JWT.ReloadInterval != next.JWT.ReloadInterval)
	if len(keys) > 0 {
		return fmt.Errorf("a restart is needed to change %s; nothing was reloaded", strings.Join(keys, ", "))
	}
	return nil
}

// guardConfig maps the config's login protection onto the guard. A bucket
// with rate 0 is off: it gets a rate no client reaches.
func guardConfig(cfg *config.Config) bruteforce.Config {
	b := func(in config.Bucket) bruteforce.Bucket {
		if in.Rate == 0 {
			return bruteforce.Bucket{Rate: 1 << 30, Interval: time.Second}
		}
		return bruteforce.Bucket{Rate: in.Rate, Interval: in.Interval}
	}
	l := cfg.Login
	return bruteforce.Config{
		Login: b(l.LoginBucket), Password: b(l.PassBucket), IP: b(l.IPBucket),
		Failures: l.Failures, FailureWindow: l.FailureWindow, LockFor: l.LockFor,
	}
}
