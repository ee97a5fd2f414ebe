// Package proxy forwards requests to upstreams: longest-prefix routing on
// path-segment boundaries over a cleaned path (the gateway hands it paths
// already normalised by package pathnorm; routes in raw mode get the path as
// the client sent it), httputil.ReverseProxy on one
// pooled transport, redirects passed through untouched, and upstream
// failures rendered as 502/504 JSON without internal details.
//
// What the upstream is told about the client comes from the gateway's own
// decision (an Origin), never from what the client sent: X-Forwarded-For is
// the verified chain (the client, then each trusted proxy, then the
// gateway's peer), X-Real-IP the client, X-Forwarded-Host the Host asked
// for (absent when there was none), X-Forwarded-Proto the scheme it arrived
// on; every other client-address header (Forwarded, True-Client-IP,
// CF-Connecting-IP, X-Client-IP, ...) is removed, from trusted proxies
// too. Hop-by-hop headers are stripped; of TE only "trailers" passes (the
// proxy relays trailers, and gRPC needs the client to say it accepts them).
// Method-override headers (X-HTTP-Method-Override and its relatives,
// package methodoverride) are removed unless the route has MethodOverride.
//
// Protocol upgrades are refused but for WebSocket handshakes the caller
// checked and tracks (upgrade.go): other Upgrade headers and
// HTTP2-Settings are dropped, and a 101 that answers anything else is a
// 502, so no h2c tunnel can open behind the gateway.
//
// A request body that fails with *http.MaxBytesError while it streams
// (the gateway's max_body_size) ends the upstream request mid-body and is
// answered 413; a client that goes away before the upstream answers is
// recorded as StatusClientClosed (499).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/methodoverride"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
)

// Route maps a path prefix to an upstream.
type Route struct {
	Path        string
	Upstream    *url.URL
	StripPrefix bool          // forward /api/x as /x
	Timeout     time.Duration // until the upstream's response headers; 0: 30 s
	RawPath     bool          // forward the path as sent (see WithSentPath)
	// Equivalence says which spellings of a path this route takes: a path
	// matches when its route key (pathnorm.Equivalence.RouteKey) falls
	// under the route's. nil: the path as it is.
	Equivalence *pathnorm.Equivalence
	// MethodOverride keeps the method-override headers; the gateway has
	// checked the methods they name where that matters.
	MethodOverride bool
}

// Origin is the gateway's decision about where a request comes from, as
// the upstream is told it.
type Origin struct {
	Client  string // the client's address: X-Real-IP
	Chain   string // X-Forwarded-For: the client, then each proxy it came through, ending with the gateway's peer
	Trusted bool   // the TCP peer is a trusted proxy: its X-Forwarded-Proto is believed
}

// ClientIP tells the proxy where a request comes from.
type ClientIP func(*http.Request) Origin

// Proxy is an http.Handler that routes and forwards.
type Proxy struct {
	routes   []Route  // longest key first
	keys     []string // each route's path as its equivalence keys it
	clientIP ClientIP
	rp       *httputil.ReverseProxy
}

// StatusClientClosed is the status recorded (nginx's 499) when the client
// went away before the upstream answered. It is never an upstream's answer
// and says nothing about the client's behaviour.
const StatusClientClosed = 499

type routeKey struct{}

// deadline is a route's timeout: it runs until the upstream's response
// headers, counted again from each piece of request body sent on, so a
// large upload that keeps moving is not cut off while a stalled one is. It
// lets the error handler tell an upstream timeout from a client that went
// away.
type deadline struct {
	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool // the response headers arrived
	timedOut atomic.Bool
}

// extend restarts the timeout after body progress, unless it has stopped
// or fired.
func (d *deadline) extend(timeout time.Duration) {
	d.mu.Lock()
	if !d.stopped && !d.timedOut.Load() {
		d.timer.Reset(timeout)
	}
	d.mu.Unlock()
}

func (d *deadline) stop() {
	d.mu.Lock()
	d.stopped = true
	d.timer.Stop()
	d.mu.Unlock()
}

// progressBody extends the deadline whenever request body is read (by the
// transport, to send it on).
type progressBody struct {
	io.ReadCloser
	d       *deadline
	timeout time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.d.extend(b.timeout)
	}
	return n, err
}

type deadlineKey struct{}

type corsKey struct{}

type sentPathKey struct{}

// sentPath is the request's URL path as the client sent it.
type sentPath struct{ path, raw string }

// WithSentPath keeps the path a request arrived with (url.URL's Path and
// RawPath) before the gateway replaced it with the normalised one: a route
// with RawPath forwards it instead of the normalised path.
func WithSentPath(ctx context.Context, path, rawPath string) context.Context {
	return context.WithValue(ctx, sentPathKey{}, sentPath{path, rawPath})
}

// OwnCORS marks a request whose CORS headers the gateway writes itself; the
// upstream's Access-Control-* headers are then dropped from the response.
func OwnCORS(ctx context.Context) context.Context {
	return context.WithValue(ctx, corsKey{}, true)
}

// transport is shared by every Proxy, so a reload (which builds a new Proxy)
// keeps the warm connection pool instead of abandoning it.
var transport = &http.Transport{
	Proxy:                 nil,  // never send client traffic through an environment proxy
	DisableCompression:    true, // pass Content-Encoding through; never decode and re-label
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:          1024,
	MaxIdleConnsPerHost:   256,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   5 * time.Second,
	ExpectContinueTimeout: time.Second,
}

// New builds a proxy over routes. clientIP must not be nil.
func New(routes []Route, clientIP ClientIP, log *slog.Logger) (*Proxy, error) {
	if len(routes) == 0 {
		return nil, errors.New("proxy: no routes")
	}
	if clientIP == nil || log == nil {
		return nil, errors.New("proxy: nil client IP function or logger")
	}
	rs := make([]Route, len(routes))
	copy(rs, routes)
	for i, r := range rs {
		if r.Upstream == nil || !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("proxy: route %d: invalid path %q or nil upstream", i, r.Path)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		return len(rs[i].Equivalence.RouteKey(rs[i].Path)) > len(rs[j].Equivalence.RouteKey(rs[j].Path))
	})
	p := &Proxy{routes: rs, clientIP: clientIP, keys: make([]string, len(rs))}
	for i, r := range rs {
		p.keys[i] = r.Equivalence.RouteKey(r.Path)
	}
	p.rp = &httputil.ReverseProxy{
		Transport:  transport,
		Rewrite:    p.rewrite,
		BufferPool: copyBuffers,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusSwitchingProtocols && !acceptedWebSocket(resp) {
				return errUnaskedSwitch // 502; ReverseProxy closes the upstream connection
			}
			// Headers arrived in time: the body may stream as long as it takes.
			if d, ok := resp.Request.Context().Value(deadlineKey{}).(*deadline); ok {
				d.stop()
			}
			if owned, _ := resp.Request.Context().Value(corsKey{}).(bool); owned {
				for k := range resp.Header {
					if strings.HasPrefix(k, "Access-Control-") {
						delete(resp.Header, k)
					}
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status, msg := http.StatusBadGateway, "Bad Gateway"
			var nerr net.Error
			var tooLarge *http.MaxBytesError
			d, _ := r.Context().Value(deadlineKey{}).(*deadline)
			switch {
			case errors.As(err, &tooLarge):
				// The body passed its limit while it streamed: the upstream
				// connection was cut mid-body.
				status, msg = http.StatusRequestEntityTooLarge, "Request body too large"
			case d != nil && d.timedOut.Load(), errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
				status, msg = http.StatusGatewayTimeout, "Gateway Timeout"
			case errors.Is(r.Context().Err(), context.Canceled):
				status = StatusClientClosed // nobody reads this
			}
			log.Warn("upstream failed", "path", r.URL.Path, "err", err, "status", status)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
		},
	}
	return p, nil
}

// Match returns the route for a request path, after cleaning it, or false:
// the longest route whose key the path's key (under that route's
// equivalence) falls under.
func (p *Proxy) Match(reqPath string) (Route, bool) {
	clean := pathnorm.Clean(reqPath)
	var eq *pathnorm.Equivalence
	key := ""
	for i, r := range p.routes {
		if i == 0 || r.Equivalence != eq {
			eq, key = r.Equivalence, r.Equivalence.RouteKey(clean)
		}
		if matches(p.keys[i], key) {
			return r, true
		}
	}
	return Route{}, false
}

// matches reports whether a cleaned path falls under a route prefix on a
// segment boundary: "/api/" takes "/api/x" but not "/api" or "/apix";
// "/svc" takes "/svc" and "/svc/a" but not "/svcx".
func matches(prefix, clean string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(clean, prefix)
	}
	return clean == prefix || strings.HasPrefix(clean, prefix+"/")
}

// ServeHTTP forwards r to its route's upstream, or answers 404 JSON.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, ok := p.Match(r.URL.Path)
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"No matching route found"}` + "\n"))
		return
	}
	timeout := route.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), routeKey{}, route))
	defer cancel()
	d := &deadline{}
	d.timer = time.AfterFunc(timeout, func() { d.timedOut.Store(true); cancel() })
	defer d.stop()
	out := r.WithContext(context.WithValue(ctx, deadlineKey{}, d))
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &progressBody{ReadCloser: out.Body, d: d, timeout: timeout}
	}
	p.rp.ServeHTTP(w, out)
}

// copyBuffers lends the 32 KiB buffers responses are copied through:
// without a pool httputil allocates (and zeroes) one per request, which was
// 70% of the gateway's allocated bytes under load.
var copyBuffers httputil.BufferPool = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	route, _ := pr.In.Context().Value(routeKey{}).(Route)
	if sent, ok := pr.In.Context().Value(sentPathKey{}).(sentPath); ok && route.RawPath {
		pr.Out.URL.Path, pr.Out.URL.RawPath = sent.path, sent.raw
	} else if !route.RawPath {
		clean := pathnorm.Clean(pr.In.URL.Path)
		if route.StripPrefix {
			// As many segments as the route's path has: the request may
			// spell them differently (/API;v=1/x on route /api).
			clean = route.Equivalence.StripSegments(clean, pathnorm.Segments(route.Path))
		}
		pr.Out.URL.Path = clean
		pr.Out.URL.RawPath = ""
	}
	pr.SetURL(route.Upstream) // joins the upstream's base path; Host becomes the upstream's
	setForwarding(pr.Out.Header, pr.In, p.clientIP(pr.In), route.MethodOverride)
	stripUpgrade(pr.Out.Header, pr.In)
}

// clientHeaders name the client, or how it connected, in one proxy's or
// CDN's dialect. None of them is ever forwarded as received, whoever sent
// it: an application that reads one would otherwise believe whatever a
// client (or a proxy passing the client's header through) wrote there.
// The gateway rebuilds X-Forwarded-For, X-Real-IP, X-Forwarded-Host and
// X-Forwarded-Proto from its own decision. The headers some frameworks take
// as the request's real path (X-Original-URL, X-Rewrite-URL: Symfony, IIS
// URL Rewrite) go too: they would name a path the gateway never routed or
// checked.
var clientHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range []string{
		"Forwarded", "X-Forwarded", "Forwarded-For", "X-Forwarded-For", "X-Original-Forwarded-For",
		"X-Real-IP", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "CF-Connecting-IPv6", "CF-Pseudo-IPv4",
		"Fastly-Client-IP", "X-Cluster-Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr",
		"X-ProxyUser-IP", "X-Azure-ClientIP", "X-Azure-SocketIP", "X-Envoy-External-Address", "X-Envoy-Internal",
		"X-Forwarded-Host", "X-Forwarded-Server", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Forwarded-Scheme",
		"X-Forwarded-Ssl", "X-Forwarded-Prefix", "X-Url-Scheme", "Front-End-Https",
		"X-Original-URL", "X-Rewrite-URL", "X-Override-URL", "X-Original-URI",
	} {
		m[http.CanonicalHeaderKey(h)] = true
	}
	return m
}()

// SetForwarding rewrites out, the headers of a request to an upstream made
// from in, to say where in came from: every client-address header removed,
// then X-Forwarded-For set to o's chain, X-Real-IP to its client,
// X-Forwarded-Host to the Host in asked for (left out when in had none) and
// X-Forwarded-Proto to the scheme it arrived on: https when the gateway
// terminated TLS, the trusted proxy's own X-Forwarded-Proto (http or https)
// when the peer is one, else http. The method-override headers
// (X-HTTP-Method-Override, ...: package methodoverride) are removed too,
// in the same pass: they would make the upstream run a method the gateway
// did not check.
func SetForwarding(out http.Header, in *http.Request, o Origin) {
	setForwarding(out, in, o, false)
}

// setForwarding is SetForwarding; keepOverrides keeps the method-override
// headers, for a route with MethodOverride.
func setForwarding(out http.Header, in *http.Request, o Origin, keepOverrides bool) {
	for k := range out {
		// Also in other spellings: CGI-style servers read X_Real_IP as
		// X-Real-IP. Neither call allocates for a canonical name.
		if clientHeaders[k] || clientHeaders[http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))] ||
			!keepOverrides && methodoverride.IsHeader(k) {
			delete(out, k)
		}
	}
	if o.Chain != "" {
		out["X-Forwarded-For"] = []string{o.Chain}
	}
	if o.Client != "" {
		out["X-Real-Ip"] = []string{o.Client}
	}
	if in.Host != "" {
		out["X-Forwarded-Host"] = []string{in.Host}
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	} else if o.Trusted {
		if v := forwardedProto(in.Header); v != "" {
			proto = v
		}
	}
	out["X-Forwarded-Proto"] = []string{proto}
}

// forwardedProto is the first scheme of X-Forwarded-Proto when it is http
// or https, else "".
func forwardedProto(h http.Header) string {
	v := h.Get("X-Forwarded-Proto")
	v, _, _ = strings.Cut(v, ",")
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "http", "https":
		return v
	}
	return ""
}
