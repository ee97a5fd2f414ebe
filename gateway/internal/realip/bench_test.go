package realip_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
)

// BenchmarkIP is the edge's decision per request: a client behind a
// trusted proxy, and a client connecting directly.
func BenchmarkIP(b *testing.B) {
	res := realip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	for _, tc := range []struct{ name, peer string }{{"trusted", "10.0.0.5:4000"}, {"direct", "203.0.113.9:4000"}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		r.Header.Set("X-Forwarded-For", "203.0.113.7")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = res.IP(r)
			}
		})
	}
}

// BenchmarkForwarding is the proxy's per request: the decision and the
// X-Forwarded-For chain to send.
func BenchmarkForwarding(b *testing.B) {
	res := realip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	for _, tc := range []struct{ name, peer string }{{"trusted", "10.0.0.5:4000"}, {"direct", "203.0.113.9:4000"}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		r.Header.Set("X-Forwarded-For", "203.0.113.7")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = res.Forwarding(r)
			}
		})
	}
}
