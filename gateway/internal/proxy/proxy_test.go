package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
)

type recorded struct {
	method, uri, host, xff, xfh, body string
	hasConnHdr                        bool
}

func upstream(t *testing.T, name string, got chan<- recorded) *url.URL {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- recorded{r.Method, r.RequestURI, r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), string(b), r.Header.Get("X-Hop") != ""}
		if r.URL.Path == "/api/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(name))
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return u
}

func TestProxy(t *testing.T) {
	got := make(chan recorded, 16)
	u1, u2 := upstream(t, "u1", got), upstream(t, "u2", got)
	p, err := proxy.New([]proxy.Route{{Path: "/api/", Upstream: u1}, {Path: "/api/v2/", Upstream: u2}, {Path: "/svc", Upstream: u2}},
		func(*http.Request) proxy.Origin { return proxy.Origin{Client: "203.0.113.9", Chain: "203.0.113.9"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	gw := httptest.NewServer(p)
	defer gw.Close()

	do := func(method, path, body string, hdr map[string]string) *http.Response {
		req, err := http.NewRequest(method, gw.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		return resp
	}

	t.Run("longest prefix, status, body and repeated headers kept", func(t *testing.T) {
		resp := do("POST", "/api/v2/users?a=1&a=2", "hello", map[string]string{"X-Forwarded-For": "6.6.6.6", "Connection": "X-Hop", "X-Hop": "1"})
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusTeapot, resp.StatusCode)
		assert.Equal(t, "u2", string(b))
		assert.Equal(t, []string{"a=1", "b=2"}, resp.Header.Values("Set-Cookie"))
		r := <-got
		assert.Equal(t, "POST", r.method)
		assert.Equal(t, "/api/v2/users?a=1&a=2", r.uri)
		assert.Equal(t, u2.Host, r.host)
		assert.Equal(t, "203.0.113.9", r.xff, "the chain is the gateway's, not the client's")
		assert.Equal(t, "hello", r.body)
		assert.False(t, r.hasConnHdr, "headers named in Connection are hop-by-hop")
	})
	t.Run("shorter prefix", func(t *testing.T) {
		resp := do("GET", "/api/users", "", nil)
		resp.Body.Close()
		assert.Equal(t, "/api/users", (<-got).uri)
	})
	t.Run("redirects are passed through", func(t *testing.T) {
		resp := do("GET", "/api/redirect", "", nil)
		resp.Body.Close()
		<-got
		assert.Equal(t, http.StatusFound, resp.StatusCode)
		assert.Equal(t, "/elsewhere", resp.Header.Get("Location"))
	})
	t.Run("no match is 404 json", func(t *testing.T) {
		for _, path := range []string{"/apix", "/api", "/svcx", "/"} {
			resp := do("GET", path, "", nil)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
			assert.JSONEq(t, `{"error":"No matching route found"}`, string(b), path)
		}
	})
	t.Run("segment boundary without trailing slash", func(t *testing.T) {
		resp := do("GET", "/svc/a", "", nil)
		resp.Body.Close()
		assert.Equal(t, "/svc/a", (<-got).uri)
	})
	t.Run("dot segments cannot escape the route", func(t *testing.T) {
		resp := do("GET", "/api/..%2f..%2fsvc/x", "", nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			r := <-got
			assert.True(t, strings.HasPrefix(r.uri, "/api/") || strings.HasPrefix(r.uri, "/svc"), r.uri)
		}
		resp = do("GET", "/api/v2/../x", "", nil)
		resp.Body.Close()
		assert.Equal(t, "/api/x", (<-got).uri)
	})
}

func TestUpstreamDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close() // nothing listens there now
	p, err := proxy.New([]proxy.Route{{Path: "/", Upstream: u}}, func(*http.Request) proxy.Origin { return proxy.Origin{Client: "1.2.3.4", Chain: "1.2.3.4"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.JSONEq(t, `{"error":"Bad Gateway"}`, rec.Body.String())
	assert.NotContains(t, rec.Body.String(), u.Host)
}

func TestTimeoutAndStripPrefix(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, r.URL.RequestURI())
	}))
	defer slow.Close()
	u, _ := url.Parse(slow.URL)
	p, err := proxy.New([]proxy.Route{
		{Path: "/t/", Upstream: u, Timeout: 100 * time.Millisecond},
		{Path: "/s/", Upstream: u, StripPrefix: true},
	}, func(*http.Request) proxy.Origin { return proxy.Origin{Client: "1.2.3.4", Chain: "1.2.3.4"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/t/../slow", nil)) // cleaned to /slow: no route
	assert.Equal(t, http.StatusNotFound, rec.Code)

	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/s/a/b?x=1", nil))
	assert.Equal(t, "/a/b?x=1", rec.Body.String())

	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/s", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}

func TestUpstreamTimeoutIs504(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	u, _ := url.Parse(slow.URL + "/base")
	p, err := proxy.New([]proxy.Route{{Path: "/", Upstream: u, Timeout: 50 * time.Millisecond}},
		func(*http.Request) proxy.Origin { return proxy.Origin{Client: "1.2.3.4", Chain: "1.2.3.4"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
	assert.JSONEq(t, `{"error":"Gateway Timeout"}`, rec.Body.String())
}

func TestEncodingAndDateArePassedThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Server", "upstream/1")
		w.Header().Set("Date", "Mon, 23 Nov 2026 10:00:00 GMT")
		_, _ = w.Write([]byte("\x1f\x8b not really gzip, and the proxy must not care"))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := proxy.New([]proxy.Route{{Path: "/", Upstream: u}}, func(*http.Request) proxy.Origin { return proxy.Origin{Client: "1.2.3.4", Chain: "1.2.3.4"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	gw := httptest.NewServer(p)
	defer gw.Close()
	req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	assert.Equal(t, "\x1f\x8b not really gzip, and the proxy must not care", string(b), "the body is not decoded")
	assert.Equal(t, []string{"upstream/1"}, resp.Header.Values("Server"))
	assert.Equal(t, []string{"Mon, 23 Nov 2026 10:00:00 GMT"}, resp.Header.Values("Date"), "one Date: the upstream's")
}

// A raw route forwards the path the request arrived with (WithSentPath),
// byte for byte; other routes forward the request's (normalised) path.
func TestRawRouteForwardsTheSentPath(t *testing.T) {
	got := make(chan recorded, 4)
	u1, u2 := upstream(t, "u1", got), upstream(t, "u2", got)
	p, err := proxy.New([]proxy.Route{{Path: "/raw/", Upstream: u1, RawPath: true}, {Path: "/", Upstream: u2}},
		func(*http.Request) proxy.Origin { return proxy.Origin{Client: "203.0.113.9", Chain: "203.0.113.9"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for _, tc := range []struct{ target, normalised, want string }{
		{"/raw//a%2Fb//c%252e?q=1", "/raw/a/b/c%2e", "/raw//a%2Fb//c%252e?q=1"},
		{"/plain//a%20b", "/plain/a b", "/plain/a%20b"},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		// What the gateway's edge does first: keep the path as sent, then
		// replace it with the normalised one.
		r = r.WithContext(proxy.WithSentPath(r.Context(), r.URL.Path, r.URL.RawPath))
		r.URL.Path, r.URL.RawPath = tc.normalised, ""
		p.ServeHTTP(httptest.NewRecorder(), r)
		assert.Equal(t, tc.want, (<-got).uri, tc.target)
	}
}

// dripBody sends n small pieces, pausing gap before each.
type dripBody struct {
	n   int
	gap time.Duration
}

func (d *dripBody) Read(p []byte) (int, error) {
	if d.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(d.gap)
	d.n--
	p[0] = 'x'
	return 1, nil
}

// The route timeout runs until the upstream's response headers, counted
// again from each piece of body sent on: an upload that keeps moving may
// take longer than the timeout, one that stalls may not.
func TestTimeoutCountsFromTheBodysProgress(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = fmt.Fprint(w, n)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := proxy.New([]proxy.Route{{Path: "/", Upstream: u, Timeout: 500 * time.Millisecond}},
		func(*http.Request) proxy.Origin { return proxy.Origin{Client: "1.2.3.4", Chain: "1.2.3.4"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	gw := httptest.NewServer(p)
	defer gw.Close()

	post := func(body io.Reader) (int, string) {
		resp, err := http.Post(gw.URL+"/up", "text/plain", body)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(&dripBody{n: 150, gap: 10 * time.Millisecond}) // 1.5 s in all
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "150", body)

	code, _ = post(io.MultiReader(strings.NewReader("x"), &dripBody{n: 1, gap: 3 * time.Second}))
	assert.Equal(t, http.StatusGatewayTimeout, code, "a body that stalls")
}

// FuzzSetForwarding: whatever header names and values a client sends, the
// upstream gets the gateway's X-Forwarded-For, X-Real-IP and scheme, and no
// other header that names the client, in any spelling.
func FuzzSetForwarding(f *testing.F) {
	for _, seed := range [][3]string{
		{"True-Client-IP", "6.6.6.6", "https"},
		{"x_real_ip", "6.6.6.6", "HTTPS, http"},
		{"CF-CONNECTING-IP", "6.6.6.6", "ftp"},
		{"X-Forwarded-For", "6.6.6.6", ""},
		{"X-Custom", "kept", " http "},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	named := []string{"forwarded", "x-forwarded-for", "x-real-ip", "true-client-ip", "cf-connecting-ip", "x-client-ip",
		"fastly-client-ip", "x-cluster-client-ip", "x-original-forwarded-for", "x-forwarded-host", "x-forwarded-proto"}
	f.Fuzz(func(t *testing.T, name, value, proto string) {
		in := httptest.NewRequest("GET", "/", nil)
		in.Header[name] = []string{value}
		in.Header["X-Forwarded-Proto"] = []string{proto}
		out := in.Header.Clone()
		proxy.SetForwarding(out, in, proxy.Origin{Client: "9.9.9.9", Chain: "9.9.9.9, 10.0.0.1", Trusted: true})
		assert.Equal(t, []string{"9.9.9.9, 10.0.0.1"}, out["X-Forwarded-For"])
		assert.Equal(t, []string{"9.9.9.9"}, out["X-Real-Ip"])
		if p := out["X-Forwarded-Proto"]; len(p) != 1 || p[0] != "http" && p[0] != "https" {
			t.Fatalf("X-Forwarded-Proto %q", p)
		}
		for k, v := range out {
			norm := strings.ReplaceAll(strings.ToLower(k), "_", "-")
			switch http.CanonicalHeaderKey(k) {
			case "X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host":
				continue
			}
			for _, n := range named {
				if norm == n {
					t.Fatalf("%q: %q reached the upstream", k, v)
				}
			}
		}
	})
}

// Method-override headers are removed, in every spelling, unless the route
// has MethodOverride; SetForwarding (the login's request) removes them too.
func TestMethodOverrideHeaders(t *testing.T) {
	headers := make(chan http.Header, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { headers <- r.Header.Clone() }))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	p, err := proxy.New([]proxy.Route{{Path: "/opt/", Upstream: u, MethodOverride: true}, {Path: "/", Upstream: u}},
		func(*http.Request) proxy.Origin { return proxy.Origin{Client: "203.0.113.9", Chain: "203.0.113.9"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	send := func(path string) http.Header {
		r := httptest.NewRequest("POST", path, nil)
		r.Header["X-Http-Method-Override"] = []string{"DELETE"}
		r.Header["X_http_method_override"] = []string{"DELETE"}
		r.Header["X-Http-Method"] = []string{"DELETE"}
		r.Header["X-Method-Override"] = []string{"DELETE"}
		r.Header["X-Method"] = []string{"DELETE"}
		r.Header["X-Methods"] = []string{"kept"}
		p.ServeHTTP(httptest.NewRecorder(), r)
		return <-headers
	}
	h := send("/a")
	for _, k := range []string{"X-Http-Method-Override", "X_http_method_override", "X-Http-Method", "X-Method-Override", "X-Method"} {
		assert.Empty(t, h[k], k)
	}
	assert.Equal(t, "kept", h.Get("X-Methods"))
	h = send("/opt/a")
	assert.Equal(t, "DELETE", h.Get("X-Http-Method-Override"), "kept where the route opts in")
	assert.Equal(t, []string{"DELETE"}, h["X_http_method_override"])

	out := http.Header{"X-Http-Method-Override": {"DELETE"}, "Accept": {"*/*"}}
	proxy.SetForwarding(out, httptest.NewRequest("POST", "/auth", nil), proxy.Origin{})
	assert.Empty(t, out.Get("X-Http-Method-Override"))
	assert.Equal(t, "*/*", out.Get("Accept"))
}
