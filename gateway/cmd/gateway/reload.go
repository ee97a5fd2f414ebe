package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/bruteforce"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
)

// reloader is the one way configuration changes at run time: the admin
// API, SIGHUP and a change of the file all call reload, which validates the
// whole file and then swaps. A bad file keeps the old configuration.
type reloader struct {
	path   string
	getenv func(string) string
	gw     *server.Gateway
	lists  *lists.Store
	guard  *bruteforce.Guard
	log    *slog.Logger

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
	cfg, err := config.Load(r.path, r.getenv)
	if err != nil {
		r.log.Warn("config reload refused", "err", err)
		return nil, err
	}
	if err := r.guard.SetConfig(guardConfig(cfg)); err != nil {
		return nil, fmt.Errorf("login_protection: %w", err)
	}
	if err := r.gw.Reload(cfg); err != nil {
		return nil, err
	}
	if err := r.lists.SetStatic(lists.Static{Allow: cfg.Lists.Allow, Deny: cfg.Lists.Deny}); err != nil {
		return nil, fmt.Errorf("lists: %w", err)
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
