package realip_test

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
	"github.com/bulwarkgw/bulwark/shared/clientid"
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
		// 0100::/8 is where the gateway keeps principals (clientid.Principal):
		// no header may pose as one.
		{"principal space in xff falls back to peer", "127.0.0.2:1", []string{"101:aaaa:bbbb:cccc::1"}, "", "127.0.0.2"},
		{"principal space in x-real-ip", "127.0.0.2:1", nil, "102::", "127.0.0.2"},
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
		if clientid.IsPrincipal(a) {
			t.Fatalf("principal identity taken from the network: %v", a)
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

func TestForwarding(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, peer, header string
		xff, realIP, fwd   string
		client, chain      string
		trusted            bool
	}{
		{"untrusted peer: the peer alone", "127.0.0.9:1", "", "6.6.6.6", "", "", "127.0.0.9", "127.0.0.9", false},
		{"trusted proxy is appended", "127.0.0.2:1", "", "9.9.9.9", "", "", "9.9.9.9", "9.9.9.9, 127.0.0.2", true},
		{"trusted hops right of the client are kept", "127.0.0.2:1", "", "9.9.9.9, 10.1.1.1", "", "", "9.9.9.9", "9.9.9.9, 10.1.1.1, 127.0.0.2", true},
		{"hops left of the client are the client's own claim", "127.0.0.2:1", "", "6.6.6.6, 9.9.9.9", "", "", "9.9.9.9", "9.9.9.9, 127.0.0.2", true},
		{"hops are written canonically", "127.0.0.2:1", "", " [2001:DB8::7]:443 ", "", "", "2001:db8::7", "2001:db8::7, 127.0.0.2", true},
		{"garbled chain: the peer", "127.0.0.2:1", "", "9.9.9.9, x", "", "", "127.0.0.2", "127.0.0.2", true},
		{"trusted proxy without headers", "127.0.0.2:1", "", "", "", "", "127.0.0.2", "127.0.0.2", true},
		{"client from X-Real-IP", "127.0.0.2:1", "X-Real-IP", "6.6.6.6", "9.9.9.9", "", "9.9.9.9", "9.9.9.9, 127.0.0.2", true},
		{"client from Forwarded", "127.0.0.2:1", "", "", "", "for=9.9.9.9", "9.9.9.9", "9.9.9.9, 127.0.0.2", true},
		{"ipv4-mapped peer", "[::ffff:127.0.0.2]:1", "", "9.9.9.9", "", "", "9.9.9.9", "9.9.9.9, 127.0.0.2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for k, v := range map[string]string{"X-Forwarded-For": tt.xff, "X-Real-IP": tt.realIP, "Forwarded": tt.fwd} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			res := realip.WithHeader(trusted, tt.header)
			client, chain, tr := res.Forwarding(r)
			assert.Equal(t, tt.client, client.String())
			assert.Equal(t, tt.chain, chain)
			assert.Equal(t, tt.trusted, tr)
			assert.Equal(t, res.IP(r), client, "one decision")
		})
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "garbage"
	client, chain, _ := realip.New(trusted).Forwarding(r)
	assert.False(t, client.IsValid())
	assert.Empty(t, chain, "no chain without a client")
}

// FuzzForwarding: whatever a trusted proxy sends, the chain passed on is a
// list of addresses that starts with the client the gateway decided and
// ends with the peer.
func FuzzForwarding(f *testing.F) {
	res := realip.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")})
	for _, seed := range [][2]string{
		{"127.0.0.2:1", "9.9.9.9"},
		{"127.0.0.2:1", "6.6.6.6, 9.9.9.9, 10.0.0.1"},
		{"127.0.0.2:1", "10.0.0.1, 10.0.0.2"},
		{"127.0.0.9:1", "9.9.9.9, , x"},
		{"[::1]:1", "[2001:db8::1]:80,  ::ffff:9.9.9.9"},
		{"127.0.0.2:1", "9.9.9.9\r\nX-Injected: 1"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		client, chain, _ := res.Forwarding(r)
		if !client.IsValid() {
			if chain != "" {
				t.Fatalf("chain %q without a client", chain)
			}
			return
		}
		hops := strings.Split(chain, ", ")
		for _, h := range hops {
			if a, err := netip.ParseAddr(h); err != nil || a.String() != h {
				t.Fatalf("hop %q of %q is not a canonical address", h, chain)
			}
		}
		if hops[0] != client.String() {
			t.Fatalf("chain %q does not start with the client %s", chain, client)
		}
		if p := realip.New(nil).IP(r); hops[len(hops)-1] != p.String() {
			t.Fatalf("chain %q does not end with the peer %s", chain, p)
		}
	})
}
