package realip_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
)

func TestIP(t *testing.T) {
	res := realip.New([]netip.Prefix{
		netip.MustParsePrefix("127.0.0.2/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
	})
	tests := []struct {
		name   string
		peer   string
		xff    []string
		realIP string
		want   string
	}{
		{"untrusted peer ignores xff", "127.0.0.9:1234", []string{"1.2.3.4"}, "", "127.0.0.9"},
		{"untrusted peer ignores x-real-ip", "127.0.0.9:1234", nil, "1.2.3.4", "127.0.0.9"},
		{"trusted peer uses xff", "127.0.0.2:1234", []string{"1.2.3.4"}, "", "1.2.3.4"},
		{"rightmost untrusted hop wins", "127.0.0.2:1", []string{"6.6.6.6, 1.2.3.4, 10.1.1.1"}, "", "1.2.3.4"},
		{"repeated xff headers join", "127.0.0.2:1", []string{"6.6.6.6", "1.2.3.4"}, "", "1.2.3.4"},
		{"all hops trusted gives leftmost", "127.0.0.2:1", []string{"10.0.0.1, 10.0.0.2"}, "", "10.0.0.1"},
		{"garbled chain falls back to peer", "127.0.0.2:1", []string{"1.2.3.4, nonsense"}, "", "127.0.0.2"},
		{"x-real-ip from trusted peer", "127.0.0.2:1", nil, "5.6.7.8", "5.6.7.8"},
		{"xff hop with port", "127.0.0.2:1", []string{"1.2.3.4:5678"}, "", "1.2.3.4"},
		{"ipv6 peer", "[2001:db8::1]:443", nil, "", "2001:db8::1"},
		{"ipv4-mapped peer is unmapped", "[::ffff:127.0.0.9]:80", nil, "", "127.0.0.9"},
		{"ipv4-mapped trusted peer", "[::ffff:127.0.0.2]:80", []string{"[2001:db8::7]"}, "", "2001:db8::7"},
		{"no headers", "127.0.0.2:1", nil, "", "127.0.0.2"},
	}
	fwd := []struct {
		name, peer, forwarded, want string
	}{
		{"forwarded from trusted peer", "127.0.0.2:1", `for=192.0.2.60;proto=http;by=203.0.113.43`, "192.0.2.60"},
		{"forwarded quoted ipv6 with port", "127.0.0.2:1", `for="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"forwarded rightmost untrusted", "127.0.0.2:1", `for=6.6.6.6, for=1.2.3.4, for=10.0.0.9`, "1.2.3.4"},
		{"forwarded obfuscated falls back to peer", "127.0.0.2:1", `for=_hidden`, "127.0.0.2"},
		{"forwarded from untrusted peer ignored", "127.0.0.9:1", `for=1.2.3.4`, "127.0.0.9"},
	}
	for _, tt := range fwd {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("Forwarded", tt.forwarded)
			assert.Equal(t, tt.want, res.IP(r).String())
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-IP", tt.realIP)
			}
			assert.Equal(t, tt.want, res.IP(r).String())
		})
	}
}

func TestUnparseablePeer(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "not-an-address"
	assert.False(t, realip.New(nil).IP(r).IsValid())
	assert.Equal(t, "", realip.New(nil).Extractor(r))
}

func FuzzIP(f *testing.F) {
	res := realip.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	f.Add("127.0.0.1:1", "1.2.3.4, 5.6.7.8", "9.9.9.9")
	f.Add("[::1]:1", "[::ffff:1.2.3.4]", "")
	f.Fuzz(func(t *testing.T, peer, xff, realIP string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", xff)
		r.Header.Set("X-Real-IP", realIP)
		a := res.IP(r)
		if a.IsValid() && a.Is4In6() {
			t.Fatalf("mapped address leaked: %v", a)
		}
		if a.IsValid() && a.Zone() != "" {
			t.Fatalf("zone leaked: %v", a)
		}
	})
}

func TestOnlyTheConfiguredHeaderIsBelieved(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.2:1"
	r.Header.Set("X-Forwarded-For", "10.0.0.1") // copied from the client by the proxy
	r.Header.Set("X-Real-IP", "203.0.113.5")    // set by the proxy
	assert.Equal(t, "10.0.0.1", realip.New(trusted).IP(r).String(), "the default order prefers X-Forwarded-For")
	assert.Equal(t, "203.0.113.5", realip.WithHeader(trusted, "x-real-ip").IP(r).String())
	assert.Equal(t, "127.0.0.2", realip.WithHeader(trusted, "Forwarded").IP(r).String(), "no Forwarded: the peer")
	r.Header.Set("Forwarded", "for=198.51.100.9")
	assert.Equal(t, "198.51.100.9", realip.WithHeader(trusted, "Forwarded").IP(r).String())
}
