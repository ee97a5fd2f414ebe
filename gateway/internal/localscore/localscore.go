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
// The bound is only as good as the profile it is computed with, so the
// gateway bounds only with a profile it is sure the scorer runs: the whole
// profile (every key present: a partial or empty answer is refused, never
// filled in with defaults), for the same rules engine version
// (wire.RulesVersionHeader), and no other. Every scorer answer names its
// profile (wire.ScoreResponse.ProfileHash); an answer naming another one
// drops the bound at once and the profile is read again. A failed read
// drops it too: until the profile is known again every request is scored,
// exactly as with the fast path off. The profile is also read every
// SyncInterval.
package localscore

import (
	"context"
	"encoding/json"
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

// Fetch returns the scorer's active profile as JSON (GET /v1/profile) and
// the rules version it names (wire.RulesVersionHeader).
type Fetch func(ctx context.Context) (body []byte, rulesVersion string, err error)

// Rules holds the scorer's active profile, compiled.
type Rules struct {
	fetch  Fetch
	log    *slog.Logger
	synced atomic.Pointer[synced] // nil while the scorer's profile is not known for sure
	last   atomic.Pointer[rules.Config]
	kick   chan struct{}
	def    rules.Config
	onLoad atomic.Pointer[func(rules.Config)]
}

// synced is the scorer's profile as the gateway read it.
type synced struct {
	cfg  rules.Config
	hash string
}

// New returns Rules that read the profile with fetch; until the first
// successful Sync, Bound reports no bound and Fallback uses the default
// profile.
func New(fetch Fetch, log *slog.Logger) (*Rules, error) {
	if fetch == nil || log == nil {
		return nil, errors.New("localscore: nil fetch or logger")
	}
	return &Rules{fetch: fetch, log: log, def: rules.DefaultConfig(), kick: make(chan struct{}, 1)}, nil
}

// Sync reads and compiles the scorer's profile. On failure the bound is
// dropped until a read succeeds.
func (r *Rules) Sync(ctx context.Context) error {
	cfg, hash, err := r.read(ctx)
	if err != nil {
		r.synced.Store(nil)
		return fmt.Errorf("scorer profile: %w", err)
	}
	if old := r.synced.Load(); old == nil || old.hash != hash {
		r.log.Info("scorer profile loaded", "profile", cfg.Name, "profile_hash", hash)
		if fn := r.onLoad.Load(); fn != nil {
			(*fn)(cfg)
		}
	}
	r.synced.Store(&synced{cfg: cfg, hash: hash})
	r.last.Store(&cfg)
	return nil
}

func (r *Rules) read(ctx context.Context) (rules.Config, string, error) {
	b, version, err := r.fetch(ctx)
	if err != nil {
		return rules.Config{}, "", err
	}
	if version != rules.Version {
		return rules.Config{}, "", fmt.Errorf("scorer runs rules version %q, this gateway %q", version, rules.Version)
	}
	if err := complete(b); err != nil {
		return rules.Config{}, "", err
	}
	p, err := profile.Parse(b) // JSON is YAML; Parse validates
	if err != nil {
		return rules.Config{}, "", err
	}
	return p.Rules(), wire.ProfileHashOf(b), nil
}

// complete refuses a profile document that leaves anything out: Parse
// would fill the gaps with defaults, which need not be what the scorer
// runs.
func complete(b []byte) error {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	for _, k := range []string{"name", "combine", "amplify", "features", "allow", "thresholds"} {
		if _, ok := doc[k]; !ok {
			return fmt.Errorf("%s: missing", k)
		}
	}
	var features map[string]json.RawMessage
	if err := json.Unmarshal(doc["features"], &features); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	for _, name := range rules.FeatureNames {
		if _, ok := features[name]; !ok {
			return fmt.Errorf("features.%s: missing", name)
		}
	}
	return nil
}

// OnLoad calls fn with every profile Sync loads that differs from the one
// before (the gateway compares its thresholds with the profile's).
func (r *Rules) OnLoad(fn func(rules.Config)) { r.onLoad.Store(&fn) }

// Check takes the profile hash a scorer answer names. When it is not the
// profile the bound is computed with, the bound is dropped at once and the
// profile read again.
func (r *Rules) Check(hash string) {
	s := r.synced.Load()
	if hash == "" || s == nil || s.hash == hash {
		return
	}
	r.synced.Store(nil)
	select {
	case r.kick <- struct{}{}:
	default:
	}
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
		case <-r.kick:
		}
	}
}

// Bound returns the upper bound of req's score, the score of the features
// the gateway knows (geo, hosting and travel unknown: a lower bound of the
// scorer's answer, from the same evaluation), and true; or false when the
// scorer's profile is not known yet.
func (r *Rules) Bound(req *wire.ScoreRequest, addr netip.Addr) (bound, local float64, ok bool) {
	s := r.synced.Load()
	if s == nil {
		return 0, 0, false
	}
	f := rules.Observed(req, addr)
	bound, local = s.cfg.Bounds(&f, req.PrevIP != "")
	if s.cfg.WantsHostnames(f.UserAgent) {
		// The scorer may not have the claimed crawler's DNS yet, and then
		// holds the claim neither for nor against it: the lower estimate
		// must not count it either (the bound above still does).
		f.CrawlerPending = true
		_, local = s.cfg.Bounds(&f, req.PrevIP != "")
	}
	return bound, local, true
}

// Verifies reports whether the scorer's profile has an allow rule that
// verifies ua's crawler claim by reverse DNS; false while the profile is
// not known.
func (r *Rules) Verifies(ua string) bool {
	s := r.synced.Load()
	return s != nil && s.cfg.WantsHostnames(ua)
}

// NoProfile is a Fetch for a gateway without a scorer profile: Bound never
// answers and Fallback uses the default profile.
func NoProfile(context.Context) ([]byte, string, error) {
	return nil, "", errors.New("no scorer profile")
}

// EstimateProfile names the score the gateway records for a request it
// forwarded on its bound (Bound's local score).
const EstimateProfile = "local"

// Fallback scores req without the scorer: the scorer's profile as last
// read (the default one until then) with geo, hosting and travel unknown.
// The gateway does no DNS: an allow rule verifies by its networks alone
// (the scorer also verifies by the crawler's reverse DNS), and a crawler
// claim it cannot check counts neither way, as in the scorer while a
// lookup is pending.
// block and throttle are the gateway's thresholds, used for the level.
func (r *Rules) Fallback(req wire.ScoreRequest, addr netip.Addr, block, throttle float64) wire.ScoreResponse {
	cfg := r.last.Load()
	if cfg == nil {
		cfg = &r.def
	}
	f := rules.Observed(&req, addr)
	f.CrawlerPending = cfg.WantsHostnames(f.UserAgent)
	res := rules.Score(cfg, f)
	level := wire.LevelAllow
	switch {
	case res.Score >= block:
		level = wire.LevelBlock
	case res.Score >= throttle:
		level = wire.LevelThrottle
	}
	return wire.ScoreResponse{Score: res.Score, Reasons: res.Reasons, Level: level, Allow: res.Allow, AllowVia: res.AllowVia, Profile: Profile}
}
