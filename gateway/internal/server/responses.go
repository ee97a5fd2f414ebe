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

// RefusalRecorder counts the gateway's own refusals of requests it had
// counted: they are nobody's answer, so they must neither raise the
// client's error ratio nor dilute it (traffic.Observation.Refused60s).
type RefusalRecorder interface {
	RecordRefusal(ctx context.Context, ip netip.Addr, now time.Time) error
}

// PrincipalRecorder remembers where a verified principal was last used: a
// Traffic that implements it feeds impossible travel.
type PrincipalRecorder interface {
	Remember(ctx context.Context, principal string, ip netip.Addr, now time.Time) error
}

// Reclassifier counts again, as an ordinary request, a request counted as
// a page asset whose answer showed it was none, and as a page when that
// answer was a document (traffic.Store.Reclassify); localReclassifier is
// the same for the in-memory store (Deps.Fallback).
type Reclassifier interface {
	Reclassify(ctx context.Context, ip netip.Addr, now time.Time, req traffic.Request, page bool) (traffic.Observation, error)
}

type localReclassifier interface {
	Reclassify(ip netip.Addr, now time.Time, req traffic.Request, page bool) traffic.Observation
}

// AnswerRecorder counts what a 2xx answer showed about a request counted
// at at: a document fetched (RecordPage), or a page asset for a request
// counted as ordinary (CountAsAsset), as traffic.Store does;
// localAnswerRecorder is the same for the in-memory store.
type AnswerRecorder interface {
	RecordPage(ctx context.Context, ip netip.Addr, at time.Time) error
	CountAsAsset(ctx context.Context, ip netip.Addr, at time.Time) error
}

type localAnswerRecorder interface {
	RecordPage(ip netip.Addr, at time.Time)
	CountAsAsset(ip netip.Addr, at time.Time)
}

// The stores must stay what outcome looks for: it finds them by type
// assertions, which a changed signature would silently defeat.
var (
	_ ResponseRecorder    = (*traffic.Store)(nil)
	_ RefusalRecorder     = (*traffic.Store)(nil)
	_ Reclassifier        = (*traffic.Store)(nil)
	_ AnswerRecorder      = (*traffic.Store)(nil)
	_ localReclassifier   = (*traffic.Memory)(nil)
	_ localAnswerRecorder = (*traffic.Memory)(nil)
)

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
//
// The other way round, a GET or HEAD counted as an ordinary request (no
// asset extension: /image/60844/productModel/200x200) whose 2xx answer is
// an asset's by its Content-Type (assetMediaType: positive evidence only,
// not a missing type nor octet-stream) is counted as the page asset it
// was (CountAsAsset): out of the burst, rate and 60 s windows, into the
// asset windows, so a page's two dozen extensionless thumbnails are no
// burst. Never for a sensitive path or a probe: those are counted whatever
// they answer. And a 2xx HTML answer to a GET is a document fetched
// (RecordPage), toward pages in 60 s; for an "asset" answered with HTML it
// goes with its reclassification. Each costs one more round trip, only for
// such answers (a page, an extensionless asset); an API's JSON costs none.
func (p *pipeline) outcome(next echo.HandlerFunc) echo.HandlerFunc {
	rec, _ := p.d.Traffic.(ResponseRecorder)
	return func(c echo.Context) error {
		err := next(c)
		v := verdictOf(c)
		status := c.Response().Status
		if err != nil || v == nil || v.bypass {
			return err
		}
		if status >= 200 && status <= 299 {
			p.answered(c, v)
			return nil
		}
		if v.obs.Asset && (status == http.StatusNotFound || status == http.StatusGone) {
			return nil
		}
		if status < 400 || status > 499 {
			return nil
		}
		if status == proxy.StatusClientClosed && c.Request().Context().Err() != nil || v.bodyOver.Load() {
			return nil // the client left, or its body was cut at the limit: not an error of its own
		}
		p.recordAnswer(c, v, rec, status)
		return nil
	}
}

// recordAnswer counts the upstream's 4xx answer to the client: in this
// gateway's memory when the request was counted there, else in the
// traffic store.
func (p *pipeline) recordAnswer(c echo.Context, v *verdict, rec ResponseRecorder, status int) {
	v.answered = true
	now := p.d.Now()
	p.recordWhereCounted(c, v, "response", func() { p.d.Fallback.RecordResponse(v.id, now, status) },
		func(ctx context.Context) error {
			if rec == nil {
				return nil
			}
			return rec.RecordResponse(ctx, v.id, now, status)
		})
}

// answered judges a 2xx answer by its Content-Type (see outcome): an
// asset that was none is reclassified (and counted as a page when the
// answer was one), an ordinary GET or HEAD that was an asset is counted as
// one, and any other HTML answer to a GET is counted as a page.
func (p *pipeline) answered(c echo.Context, v *verdict) {
	ct := c.Response().Header().Get(echo.HeaderContentType)
	method := c.Request().Method
	page := method == http.MethodGet && documentContentType(ct)
	switch {
	case v.obs.Asset:
		if !assetContentType(ct, v.desc.Path) {
			p.g.assets.forget(v.desc.Pattern)
			p.reclassify(c, v, page)
		}
	case (method == http.MethodGet || method == http.MethodHead) && !v.desc.Sensitive && !v.desc.Probe && assetMediaType(ct):
		p.g.assets.learn(v.desc.Pattern)
		p.answer(c, v, true)
	case page:
		p.answer(c, v, false)
	}
}

// reclassify counts a request taken for a page asset again as the
// ordinary request it was (and a page, with page), at the time it was
// counted, where it was counted: Redis, or this gateway's memory while
// Redis was unreachable.
func (p *pipeline) reclassify(c echo.Context, v *verdict, page bool) {
	served := v.desc.Served(v.paths.sensitive)
	lr, _ := p.d.Fallback.(localReclassifier)
	rc, _ := p.d.Traffic.(Reclassifier)
	p.recordWhereCounted(c, v, "reclassification", func() {
		if lr != nil {
			lr.Reclassify(v.id, v.seen, served, page)
		}
	}, func(ctx context.Context) error {
		if rc == nil {
			return nil
		}
		_, err := rc.Reclassify(ctx, v.id, v.seen, served, page)
		return err
	})
}

// answer counts, at the time the request was counted and where it was
// counted, that it was a page asset (asset) or fetched a document.
func (p *pipeline) answer(c echo.Context, v *verdict, asset bool) {
	la, _ := p.d.Fallback.(localAnswerRecorder)
	ar, _ := p.d.Traffic.(AnswerRecorder)
	p.recordWhereCounted(c, v, "answer", func() {
		switch {
		case la == nil:
		case asset:
			la.CountAsAsset(v.id, v.seen)
		default:
			la.RecordPage(v.id, v.seen)
		}
	}, func(ctx context.Context) error {
		switch {
		case ar == nil:
			return nil
		case asset:
			return ar.CountAsAsset(ctx, v.id, v.seen)
		default:
			return ar.RecordPage(ctx, v.id, v.seen)
		}
	})
}

// assetContentType reports whether an answer of media type ct (a
// Content-Type header) to the normalised path may be a page asset's: an
// asset's media type (assetMediaType) or bytes of no stated kind; JSON only
// for a source map (.map). No Content-Type at all passes too (a 204, a
// careless static server). Not HTML, JSON or XML, text/plain included:
// what an API or a page answers.
func assetContentType(ct, path string) bool {
	switch mt := mediaType(ct); mt {
	case "", "application/octet-stream":
		return true
	case "application/json":
		return strings.HasSuffix(path, ".map")
	default:
		return assetMediaType(mt)
	}
}

// assetMediaType reports whether ct (a Content-Type header, or a media
// type) names what only a page asset is: images, fonts, audio, video,
// stylesheets, scripts, WebAssembly, subtitle tracks, streaming playlists
// and the web app manifest (the kinds of pathclass.DefaultAssetExtensions).
// It is the evidence that turns an ordinary request into an asset, so it
// takes no missing type and no octet-stream: an API's 204 or its file
// downloads are no page's assets.
func assetMediaType(ct string) bool {
	mt := mediaType(ct)
	if kind, _, ok := strings.Cut(mt, "/"); ok {
		switch kind {
		case "image", "font", "audio", "video":
			return true
		}
	}
	switch mt {
	case "text/css", "text/javascript", "application/javascript", "application/x-javascript",
		"application/ecmascript", "text/ecmascript", "application/wasm",
		"text/vtt", "application/ogg", "application/vnd.ms-fontobject", "application/font-sfnt",
		"application/font-woff", "application/x-font-woff", "application/x-font-ttf", "application/x-font-otf",
		"application/vnd.apple.mpegurl", "application/x-mpegurl", "application/dash+xml", "application/manifest+json":
		return true
	}
	return false
}

// documentContentType reports whether ct names a document (a page):
// text/html or application/xhtml+xml.
func documentContentType(ct string) bool {
	switch mediaType(ct) {
	case "text/html", "application/xhtml+xml":
		return true
	}
	return false
}

// mediaType is ct without its parameters, lower-cased.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
