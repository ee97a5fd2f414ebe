package clientid_test

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/clientid"
)

func TestIdentityAndDisplay(t *testing.T) {
	for _, tc := range []struct {
		in, id, display string
	}{
		{"192.0.2.7", "192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7", "192.0.2.7"},
		{"::1", "::", "::/64"},
		{"::", "::", "::/64"},
		{"2001:db8:1:2::5", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::", "2001:db8:1:3::", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::", "fe80::/64"},
	} {
		ip := netip.MustParseAddr(tc.in)
		if got := clientid.Identity(ip).String(); got != tc.id {
			t.Errorf("Identity(%s) = %s, want %s", tc.in, got, tc.id)
		}
		if got := clientid.Display(ip); got != tc.display {
			t.Errorf("Display(%s) = %s, want %s", tc.in, got, tc.display)
		}
	}
	if got := clientid.Identity(netip.Addr{}); got.IsValid() {
		t.Errorf("Identity(zero) = %v, want the zero Addr", got)
	}
	if got := clientid.Display(netip.Addr{}); got != "" {
		t.Errorf("Display(zero) = %q, want empty", got)
	}
}

// TestIdentityKeepsIPv4ByteIdentical: every key the gateways wrote for an
// IPv4 client before this package existed is still the key.
func TestIdentityKeepsIPv4ByteIdentical(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.0.0.1", "127.0.0.1", "203.0.113.255", "255.255.255.255"} {
		ip := netip.MustParseAddr(s)
		if got := clientid.Identity(ip); got != ip {
			t.Errorf("Identity(%s) = %s", s, got)
		}
		if got := clientid.Display(ip); got != s {
			t.Errorf("Display(%s) = %s", s, got)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the identity; "" for an error
		why  string // part of the error
	}{
		{"192.0.2.7", "192.0.2.7", ""},
		{"192.0.2.7/32", "192.0.2.7", ""},
		{"::ffff:192.0.2.7", "192.0.2.7", ""},
		{"::ffff:192.0.2.7/128", "192.0.2.7", ""},
		{"::1", "::", ""},
		{"2001:db8:1:2::5", "2001:db8:1:2::", ""},
		{"2001:DB8:1:2::77", "2001:db8:1:2::", ""},
		{"2001:db8:1:2::/64", "2001:db8:1:2::", ""},
		{"2001:db8:1:2::99/64", "2001:db8:1:2::", ""},
		{"", "", "empty"},
		{"not-an-ip", "", "not an IP address"},
		{"fe80::1%eth0", "", "zone"},
		{"fe80::1%eth0/64", "", "not an IP address"},
		{"2001:db8:1:2::/48", "", "not a /48"},
		{"2001:db8:1:2::5/128", "", "not a /128"},
		{"192.0.2.0/24", "", "not a /24"},
		{"::ffff:192.0.2.7/96", "", "not a /96"},
		{"2001:db8::/65", "", "not a /65"},
		{"2001:db8::/", "", "not an IP address"},
		{"[::1]", "", "not an IP address"},
		{"1.2.3.4:80", "", "not an IP address"},
	} {
		got, err := clientid.Parse(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %s, want an error", tc.in, got)
				continue
			}
			if !errors.Is(err, clientid.ErrInvalid) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Parse(%q) error %q, want ErrInvalid saying %q", tc.in, err, tc.why)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("Parse(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// TestTextPatternMatchesExactlyTheClient checks TextPattern against
// netip's own containment for every /64 whose groups are 0, 1 or abcd
// (every arrangement of zero groups RFC 5952 can shorten) and every
// address whose groups are 0 or 5 on those networks.
func TestTextPatternMatchesExactlyTheClient(t *testing.T) {
	vals := []uint16{0, 1, 0xabcd}
	var nets [][4]uint16
	for i := 0; i < 81; i++ {
		var n [4]uint16
		for g, k := 0, i; g < 4; g, k = g+1, k/3 {
			n[g] = vals[k%3]
		}
		nets = append(nets, n)
	}
	addr := func(n [4]uint16, host int) netip.Addr {
		var b [16]byte
		for g := 0; g < 8; g++ {
			v := uint16(0)
			if g < 4 {
				v = n[g]
			} else if host&(1<<(g-4)) != 0 {
				v = 5
			}
			b[2*g], b[2*g+1] = byte(v>>8), byte(v)
		}
		return netip.AddrFrom16(b)
	}
	var addrs []netip.Addr
	for _, n := range nets {
		for h := 0; h < 16; h++ {
			addrs = append(addrs, addr(n, h))
		}
	}
	for _, n := range nets {
		id := addr(n, 0)
		p := netip.PrefixFrom(id, 64)
		re := regexp.MustCompile(clientid.TextPattern(id))
		if !re.MatchString(clientid.Display(id)) {
			t.Errorf("%s: pattern %s misses its display form", p, re)
		}
		for _, a := range addrs {
			if got, want := re.MatchString(a.String()), p.Contains(a); got != want {
				t.Errorf("%s: pattern %s on %s = %v, want %v", p, re, a, got, want)
			}
		}
	}
}

func TestTextPatternIPv4AndZero(t *testing.T) {
	re := regexp.MustCompile(clientid.TextPattern(netip.MustParseAddr("192.0.2.7")))
	for s, want := range map[string]bool{"192.0.2.7": true, "192.0.2.70": false, "192a0.2.7": false, "1192.0.2.7": false} {
		if got := re.MatchString(s); got != want {
			t.Errorf("IPv4 pattern on %s = %v, want %v", s, got, want)
		}
	}
	none := regexp.MustCompile(clientid.TextPattern(netip.Addr{}))
	for _, s := range []string{"", "::", "192.0.2.7"} {
		if none.MatchString(s) {
			t.Errorf("the zero Addr's pattern matches %q", s)
		}
	}
}

// FuzzParseClient: Parse never panics, what it accepts is an identity, and
// Display's form reads back as the same client.
func FuzzParseClient(f *testing.F) {
	for _, s := range []string{
		"192.0.2.7", "::1", "2001:db8:1:2::5", "2001:db8:1:2::/64", "2001:db8:1:2::5/64",
		"::ffff:192.0.2.7", "::ffff:192.0.2.7/128", "192.0.2.7/32", "fe80::1%eth0", "2001:db8::/48", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := clientid.Parse(s)
		if err != nil {
			if !errors.Is(err, clientid.ErrInvalid) {
				t.Fatalf("Parse(%q): error %v is not ErrInvalid", s, err)
			}
			return
		}
		if !id.IsValid() || id.Zone() != "" || id.Is4In6() || clientid.Identity(id) != id {
			t.Fatalf("Parse(%q) = %s, not an identity", s, id)
		}
		d := clientid.Display(id)
		back, err := clientid.Parse(d)
		if err != nil || back != id {
			t.Fatalf("Parse(Display(%s)) = %s, %v; want %s", id, back, err, id)
		}
		if !regexp.MustCompile(clientid.TextPattern(id)).MatchString(d) {
			t.Fatalf("TextPattern(%s) misses %s", id, d)
		}
	})
}

// FuzzTextPattern: the pattern of a's client matches b's text exactly when
// b is the same client.
func FuzzTextPattern(f *testing.F) {
	f.Add([]byte(netip.MustParseAddr("2001:db8:0:0::1").AsSlice()), []byte(netip.MustParseAddr("2001:db8::5:6").AsSlice()))
	f.Add([]byte(netip.MustParseAddr("2001:0:0:1::").AsSlice()), []byte(netip.MustParseAddr("2001::1:0:0:5:6").AsSlice()))
	f.Add([]byte(netip.MustParseAddr("192.0.2.7").AsSlice()), []byte(netip.MustParseAddr("192.0.2.8").AsSlice()))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		x, ok1 := netip.AddrFromSlice(a)
		y, ok2 := netip.AddrFromSlice(b)
		if !ok1 || !ok2 {
			return
		}
		pat := clientid.TextPattern(x)
		re, err := regexp.Compile(pat)
		if err != nil {
			t.Fatalf("TextPattern(%s) = %q: %v", x, pat, err)
		}
		y = y.Unmap()
		if got, want := re.MatchString(y.String()), clientid.Identity(x) == clientid.Identity(y); got != want {
			t.Fatalf("TextPattern(%s) = %s on %s: %v, want %v", x, pat, y, got, want)
		}
	})
}

func TestPrincipalIdentity(t *testing.T) {
	k := clientid.Principal(clientid.KindKey, "3f2a9c0d1e2b4a5c")
	j := clientid.Principal(clientid.KindJWT, "3f2a9c0d1e2b4a5c")
	require.True(t, k.IsValid())
	assert.NotEqual(t, k, j, "kinds are apart")
	assert.True(t, clientid.IsPrincipal(k))
	assert.Equal(t, clientid.KindJWT, clientid.PrincipalKind(j))
	assert.Equal(t, k, clientid.Identity(k), "a principal is its own identity")
	assert.False(t, clientid.Principal("other", "x").IsValid())
	assert.False(t, clientid.Principal(clientid.KindKey, "").IsValid())
	for _, a := range []string{"192.0.2.1", "2001:db8::1", "100::1", "::ffff:1.2.3.4", "100:3::", "103::"} {
		assert.False(t, clientid.IsPrincipal(netip.MustParseAddr(a)), a)
	}

	d := clientid.Display(k)
	assert.Regexp(t, `^key:[0-9a-f]{12}$`, d)
	back, err := clientid.Parse(d)
	require.NoError(t, err)
	assert.Equal(t, k, back)
	for _, bad := range []string{"key:", "key:xyz", "key:0123456789", "jwt:0123456789abcd"} {
		_, err := clientid.Parse(bad)
		assert.ErrorIs(t, err, clientid.ErrInvalid, bad)
	}
}
