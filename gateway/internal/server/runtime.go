package server

import (
	"fmt"
	"net/http"
	"strings"
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
	cfg        *config.Config
	ips        *realip.Resolver // trusted_proxies is reloadable
	proxy      *proxy.Proxy
	loginPaths map[string]config.LoginRoute // by loginKey
	authPath   string                       // loginKey of api_key.auth_path
	routes     map[string]config.Route      // by path, for proxy matches
}

func newRuntime(cfg *config.Config, d Deps) (*runtime, error) {
	routes := make([]proxy.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = proxy.Route{Path: r.Path, Upstream: r.Upstream, StripPrefix: r.StripPrefix, Timeout: r.Timeout, RawPath: r.RawPath,
			MethodOverride: r.MethodOverride}
	}
	ips := realip.WithHeader(cfg.TrustedProxies, cfg.ClientIPHeader)
	px, err := proxy.New(routes, origin(ips), d.Log)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	rt := &runtime{cfg: cfg, ips: ips, proxy: px, loginPaths: map[string]config.LoginRoute{},
		authPath: loginKey(cfg.APIKey.AuthPath), routes: map[string]config.Route{}}
	for _, r := range cfg.Routes {
		rt.routes[r.Path] = r
	}
	for _, lr := range cfg.Login.Routes {
		rt.loginPaths[loginKey(lr.Path)] = lr
	}
	return rt, nil
}

// loginKey is how login paths are compared: cleaned, without a trailing
// slash, case-folded, so /api/login/, //api/login and /API/LOGIN cannot
// reach a login the gateway does not guard (many backends route them all
// to the same handler).
func loginKey(path string) string {
	k := strings.ToLower(proxy.CleanPath(pathnorm.WithoutParams(path)))
	if len(k) > 1 {
		k = strings.TrimSuffix(k, "/")
	}
	return k
}

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
