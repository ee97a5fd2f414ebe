package server

import (
	"fmt"
	"sync/atomic"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
)

// runtime is everything a request needs that a reload may change. A
// request loads it once, so it sees one consistent configuration even when
// a reload lands halfway through.
type runtime struct {
	cfg        *config.Config
	proxy      *proxy.Proxy
	loginPaths map[string]config.LoginRoute
}

func newRuntime(cfg *config.Config, d Deps) (*runtime, error) {
	routes := make([]proxy.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = proxy.Route{Path: r.Path, Upstream: r.Upstream, StripPrefix: r.StripPrefix, Timeout: r.Timeout}
	}
	px, err := proxy.New(routes, d.IPs.Extractor, d.Log)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	rt := &runtime{cfg: cfg, proxy: px, loginPaths: map[string]config.LoginRoute{}}
	for _, lr := range cfg.Login.Routes {
		rt.loginPaths[lr.Path] = lr
	}
	return rt, nil
}

// route returns the configured route a proxy route came from.
func (rt *runtime) route(path string) (config.Route, bool) {
	pr, ok := rt.proxy.Match(path)
	if !ok {
		return config.Route{}, false
	}
	for _, r := range rt.cfg.Routes {
		if r.Path == pr.Path {
			return r, true
		}
	}
	return config.Route{}, false
}

// holder swaps runtimes atomically.
type holder struct{ p atomic.Pointer[runtime] }

func (h *holder) load() *runtime { return h.p.Load() }
