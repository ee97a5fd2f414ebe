// Package localscore runs the scorer's own rules engine (scorer/rules) in
// the gateway, on the profile the scorer publishes (GET /v1/profile), for
// two jobs:
//
//   - Bound: the highest score a request could get from the scorer whatever
//     its geo turns out to be (rules.Config.UpperBound). A request whose
//     bound is under the throttle threshold cannot be throttled or blocked,
//     so the gateway forwards it without waiting for the scorer. Until the
//     profile has been read from the scorer there is no bound and every
//     request is scored.
//   - Fallback: the score when the scorer cannot answer, from the same rules
//     with geo, hosting and travel unknown (so never higher than the
//     scorer's own score for the request: an outage never makes the gateway
//     stricter).
//
// The profile is read again every SyncInterval, so a scorer reloaded with
// another profile is followed within that time.
package localscore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Profile is the name fallback responses carry.
const Profile = "fallback"

// SyncInterval is how often the scorer's profile is read again.
const SyncInterval = 5 * time.Second

// Fetch returns the scorer's active profile as JSON (GET /v1/profile).
type Fetch func(ctx context.Context) ([]byte, error)

// Rules holds the scorer's active profile, compiled.
type Rules struct {
	fetch  Fetch
	log    *slog.Logger
	synced atomic.Pointer[rules.Config] // nil until the scorer's profile is known
	def    rules.Config
}

// New returns Rules that read the profile with fetch; until the first
// successful Sync, Bound reports no bound and Fallback uses the default
// profile.
func New(fetch Fetch, log *slog.Logger) (*Rules, error) {
	if fetch == nil || log == nil {
		return nil, errors.New("localscore: nil fetch or logger")
	}
	return &Rules{fetch: fetch, log: log, def: rules.DefaultConfig()}, nil
}

// Sync reads and compiles the scorer's profile. On failure the profile
// known before (if any) stays.
func (r *Rules) Sync(ctx context.Context) error {
	b, err := r.fetch(ctx)
	if err != nil {
		return fmt.Errorf("scorer profile: %w", err)
	}
	p, err := profile.Parse(b) // JSON is YAML; Parse validates
	if err != nil {
		return fmt.Errorf("scorer profile: %w", err)
	}
	cfg := p.Rules()
	if old := r.synced.Load(); old == nil || old.Name != cfg.Name {
		r.log.Info("scorer profile loaded", "profile", cfg.Name)
	}
	r.synced.Store(&cfg)
	return nil
}

// Run syncs every interval until ctx ends; failures are logged, the last
// known profile stays.
func (r *Rules) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		sctx, cancel := context.WithTimeout(ctx, interval)
		err := r.Sync(sctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.log.Warn("scorer profile not read; requests are scored by the scorer until it is", "err", err)
			failing = true
		case err == nil:
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Bound returns the upper bound of req's score, the score of the features
// the gateway knows (geo, hosting and travel unknown: a lower bound of the
// scorer's answer, from the same evaluation), and true; or false when the
// scorer's profile is not known yet.
func (r *Rules) Bound(req *wire.ScoreRequest, addr netip.Addr) (bound, local float64, ok bool) {
	cfg := r.synced.Load()
	if cfg == nil {
		return 0, 0, false
	}
	f := rules.Observed(req, addr)
	bound, local = cfg.Bounds(&f, req.PrevIP != "")
	return bound, local, true
}

// NoProfile is a Fetch for a gateway without a scorer profile: Bound never
// answers and Fallback uses the default profile.
func NoProfile(context.Context) ([]byte, error) { return nil, errors.New("no scorer profile") }

// EstimateProfile names the score the gateway records for a request it
// forwarded on its bound (Bound's local score).
const EstimateProfile = "local"

// Fallback scores req without the scorer: the scorer's profile (the
// default one until it is known) with geo, hosting and travel unknown.
// block and throttle are the gateway's thresholds, used for the level.
func (r *Rules) Fallback(req wire.ScoreRequest, addr netip.Addr, block, throttle float64) wire.ScoreResponse {
	cfg := r.synced.Load()
	if cfg == nil {
		cfg = &r.def
	}
	res := rules.Score(cfg, rules.Observed(&req, addr))
	level := wire.LevelAllow
	switch {
	case res.Score >= block:
		level = wire.LevelBlock
	case res.Score >= throttle:
		level = wire.LevelThrottle
	}
	return wire.ScoreResponse{Score: res.Score, Reasons: res.Reasons, Level: level, Allow: res.Allow, Profile: Profile}
}
