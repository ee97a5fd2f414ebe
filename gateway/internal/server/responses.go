package server

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
)

// ResponseRecorder counts the upstream's answers per client: a Traffic
// that implements it feeds the error-ratio and auth-failure features.
type ResponseRecorder interface {
	RecordResponse(ctx context.Context, ip netip.Addr, now time.Time, status int) error
}

// PrincipalRecorder remembers where a verified principal was last used: a
// Traffic that implements it feeds impossible travel.
type PrincipalRecorder interface {
	Remember(ctx context.Context, principal string, ip netip.Addr, now time.Time) error
}

// Reclassifier counts again, as an ordinary request, a request counted as
// a page asset whose answer showed it was none (traffic.Store.Reclassify);
// localReclassifier is the same for the in-memory store (Deps.Fallback).
type Reclassifier interface {
	Reclassify(ctx context.Context, ip netip.Addr, now time.Time, req traffic.Request) (traffic.Observation, error)
}

type localReclassifier interface {
	Reclassify(ip netip.Addr, now time.Time, req traffic.Request) traffic.Observation
}

// outcome runs after the proxy has answered and records the
// upstream's status for the client: every 4xx toward the error ratio
// (scanning), 401 and 403 also as auth failures. The gateway's own refusals
// never get here (they are returned before the proxy), nor do proxy errors
// (502/504: no penalty for the client when the upstream is down). Neither
// does a request the client abandoned before the upstream answered (the
// proxy's 499): giving up is not an error of the client's, and a client
// whose requests time out under load must not be throttled for it. A body
// cut at max_body_size (the proxy's 413) is the gateway's own answer, not
// counted, like the 413 to a declared length.
//
// A page asset is judged by its answer too, since its class came from an
// extension the client chose. A 404 or 410 is excused (a browser's missing
// icon: iOS asks every site for apple-touch-icon.png); any other 4xx is an
// error like any request's (token guessing against /api/me.js is auth
// failures). A 2xx whose Content-Type is no asset's (assetContentType) was
// no asset: many upstreams ignore a suffix (Rails' format, Express's
// parseInt, Spring's suffix matching), so GET /api/products/7.png may be
// answered with the product's JSON; the request is counted again as the
// ordinary one it was (Reclassify), or a scraper adding .png to every id
// would hide from every feature but the asset rate. That costs one more
// round trip, only for such answers: a browser's assets come back as
// images, stylesheets, scripts and fonts. A 3xx is not judged: redirects
// carry an HTML body whatever they point to (an avatar's redirect to its
// CDN), and they give a scraper nothing.
func (p *pipeline) outcome(next echo.HandlerFunc) echo.HandlerFunc {
	rec, _ := p.d.Traffic.(ResponseRecorder)
	return func(c echo.Context) error {
		err := next(c)
		v := verdictOf(c)
		status := c.Response().Status
		if err != nil || v == nil || v.bypass {
			return err
		}
		if v.obs.Asset {
			if status >= 200 && status <= 299 && !assetContentType(c.Response().Header().Get(echo.HeaderContentType), v.desc.Path) {
				p.reclassify(c, v)
				return nil
			}
			if status == http.StatusNotFound || status == http.StatusGone {
				return nil
			}
		}
		if status < 400 || status > 499 {
			return nil
		}
		if status == proxy.StatusClientClosed && c.Request().Context().Err() != nil || v.bodyOver.Load() {
			return nil // the client left, or its body was cut at the limit: not an error of its own
		}
		if v.local {
			p.d.Fallback.RecordResponse(v.id, p.d.Now(), status)
			return nil
		}
		if rec == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), v.rt.cfg.Redis.Timeout)
		defer cancel()
		if rerr := rec.RecordResponse(ctx, v.id, p.d.Now(), status); rerr != nil {
			p.redisDown("response not recorded", rerr, "ip", v.ip, "status", status)
		}
		return nil
	}
}

// reclassify counts a request taken for a page asset again as the
// ordinary request it was, at the time it was counted, where it was
// counted: Redis, or this gateway's memory while Redis was unreachable.
func (p *pipeline) reclassify(c echo.Context, v *verdict) {
	served := v.desc.Served(v.rt.cfg.Scoring.SensitivePaths)
	if v.local {
		if lr, ok := p.d.Fallback.(localReclassifier); ok {
			lr.Reclassify(v.id, v.seen, served)
		}
		return
	}
	rc, ok := p.d.Traffic.(Reclassifier)
	if v.degraded || !ok {
		return // nothing counted it
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), v.rt.cfg.Redis.Timeout)
	defer cancel()
	if _, err := rc.Reclassify(ctx, v.id, v.seen, served); err != nil {
		p.redisDown("asset not reclassified", err, "ip", v.ip, "path", v.desc.Path)
	}
}

// assetContentType reports whether an answer of media type ct (a
// Content-Type header) to the normalised path may be a page asset's:
// images, fonts, audio, video, stylesheets, scripts, WebAssembly, subtitle
// tracks and bytes of no stated kind; JSON only for a source map (.map).
// No Content-Type at all passes too (a 204, a careless static server). Not
// HTML, JSON or XML, text/plain included: what an API or a page answers.
func assetContentType(ct, path string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		return true
	}
	if kind, _, ok := strings.Cut(mt, "/"); ok {
		switch kind {
		case "image", "font", "audio", "video":
			return true
		}
	}
	switch mt {
	case "text/css", "text/javascript", "application/javascript", "application/x-javascript",
		"application/ecmascript", "text/ecmascript", "application/wasm", "application/octet-stream",
		"text/vtt", "application/ogg", "application/vnd.ms-fontobject", "application/font-sfnt",
		"application/font-woff", "application/x-font-woff", "application/x-font-ttf", "application/x-font-otf":
		return true
	case "application/json":
		return strings.HasSuffix(path, ".map")
	}
	return false
}
