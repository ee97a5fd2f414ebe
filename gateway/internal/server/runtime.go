package server

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
)

// runtime is everything a request needs that a reload may change. A
// request loads it once, so it sees one consistent configuration even when
// a reload lands halfway through.
type runtime struct {
	cfg    *config.Config
	ips    *realip.Resolver // trusted_proxies is reloadable
	proxy  *proxy.Proxy
	routes map[string]config.Route // by path, for proxy matches
	// paths are the configured paths that checks name (logins, the auth
	// path, sensitive paths), keyed by each equivalence in use: a request
	// is compared under its route's (config.Route.Equivalence).
	paths map[*pathnorm.Equivalence]*pathSet
}

// pathSet is the configured paths as one equivalence keys them.
type pathSet struct {
	logins    map[string]config.LoginRoute // login_protection.routes
	authPath  string                       // api_key.auth_path ("" for none)
	sensitive map[string]bool              // scoring.sensitive_paths
}

func newRuntime(cfg *config.Config, d Deps) (*runtime, error) {
	rt := &runtime{cfg: cfg, routes: map[string]config.Route{}, paths: map[*pathnorm.Equivalence]*pathSet{}}
	routes := make([]proxy.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		r.Equivalence = rt.equivalence(r)
		rt.routes[r.Path] = r
		rt.paths[r.Equivalence] = nil
		routes[i] = proxy.Route{Path: r.Path, Upstream: r.Upstream, StripPrefix: r.StripPrefix, Timeout: r.Timeout,
			RawPath: r.RawPath, Equivalence: r.Equivalence, MethodOverride: r.MethodOverride}
	}
	ips := realip.WithHeader(cfg.TrustedProxies, cfg.ClientIPHeader)
	px, err := proxy.New(routes, origin(ips), d.Log)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	rt.ips, rt.proxy = ips, px
	rt.paths[rt.equivalence(config.Route{})] = nil
	for eq := range rt.paths {
		set := &pathSet{logins: map[string]config.LoginRoute{}, sensitive: map[string]bool{}}
		for _, lr := range cfg.Login.Routes {
			set.logins[eq.Key(pathnorm.Clean(lr.Path))] = lr
		}
		if cfg.APIKey.AuthPath != "" {
			set.authPath = eq.Key(pathnorm.Clean(cfg.APIKey.AuthPath))
		}
		for p := range cfg.Scoring.SensitivePaths {
			set.sensitive[eq.Key(pathnorm.Clean(p))] = true
		}
		rt.paths[eq] = set
	}
	return rt, nil
}

// equivalence is the equivalence a request on route r is keyed by: the
// route's, or the top level's when no route matched.
func (rt *runtime) equivalence(r config.Route) *pathnorm.Equivalence {
	if r.Equivalence != nil {
		return r.Equivalence
	}
	if rt.cfg.PathEquivalence != nil {
		return rt.cfg.PathEquivalence
	}
	return defaultEquivalence
}

var defaultEquivalence = pathnorm.Lenient()

// route returns the configured route a proxy route came from.
func (rt *runtime) route(path string) (config.Route, bool) {
	pr, ok := rt.proxy.Match(path)
	if !ok {
		return config.Route{}, false
	}
	r, ok := rt.routes[pr.Path]
	return r, ok
}

// holder swaps runtimes atomically.
type holder struct{ p atomic.Pointer[runtime] }

func (h *holder) load() *runtime { return h.p.Load() }

// origin tells the proxy what the resolver decided about a request.
func origin(ips *realip.Resolver) proxy.ClientIP {
	return func(r *http.Request) proxy.Origin {
		client, chain, trusted := ips.Forwarding(r)
		o := proxy.Origin{Chain: chain, Trusted: trusted}
		if client.IsValid() {
			o.Client = client.String()
		}
		return o
	}
}
