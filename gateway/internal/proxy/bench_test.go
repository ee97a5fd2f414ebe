package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// BenchmarkRewrite is what the forwarding headers cost per request: the
// outbound request built from a typical browser request that came through
// a trusted proxy.
func BenchmarkRewrite(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:9/base")
	p, err := New([]Route{{Path: "/api/", Upstream: u}}, func(*http.Request) Origin {
		return Origin{Client: "203.0.113.7", Chain: "203.0.113.7, 127.0.0.2", Trusted: true}
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	in := httptest.NewRequest("GET", "/api/products/42?page=2", nil)
	in.RemoteAddr = "127.0.0.2:4000"
	in.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	in.Header.Set("Accept", "text/html,application/xhtml+xml")
	in.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	in.Header.Set("Cookie", "session=abc123")
	in.Header.Set("X-Forwarded-For", "203.0.113.7")
	in = in.WithContext(contextWithRoute(in, p.routes[0]))
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		p.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	}
}

func contextWithRoute(r *http.Request, route Route) context.Context {
	return context.WithValue(r.Context(), routeKey{}, route)
}

// BenchmarkForwardBody is a 16 KiB POST through the proxy to a loopback
// upstream that reads it: what a request with a body costs end to end.
func BenchmarkForwardBody(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := New([]Route{{Path: "/", Upstream: u}}, func(*http.Request) Origin {
		return Origin{Client: "203.0.113.7", Chain: "203.0.113.7"}
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/upload", bytes.NewReader(body))
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
