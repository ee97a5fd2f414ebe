package pathnorm_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
)

// The spellings issue 19 found walking around login protection, and the
// families the default equivalence answers, all land on one key.
func TestLenientJoinsTheSpellingsBackendsJoin(t *testing.T) {
	e := pathnorm.Lenient()
	for _, sent := range []string{
		"/api/login", "/api/login/", "/API/Login", "/api/login.json", "/api/login.JSON", "/api/login.xml",
		"/api/login%20", "/api/login.", "/api/login%2e", "/api/login.%20.", "/api/login;jsessionid=1",
		"/api;x=1/login;y=2/", "//api//login", "/api/login.json.", "/api/login%20.json", "/api/LOGIN;a.json",
		"/api/logi%6E", "/%41PI/login", "/api/login%2E%2E", "/api./login",
	} {
		p, err := pathnorm.Normalize(sent, pathnorm.Strict)
		require.NoError(t, err, sent)
		assert.Equal(t, "/api/login", e.Key(p), sent)
	}
	// Unicode case folding, as Java's equalsIgnoreCase: long s and Kelvin.
	assert.Equal(t, "/secret", e.Key("/ſecret"))
	assert.Equal(t, "/kit", e.Key("/\u212Ait"))
}

func TestKeysOnlyJoinWhatTheRulesSay(t *testing.T) {
	e := pathnorm.Lenient()
	for _, c := range []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/api/orders/7", "/api/orders/7"},
		{"/.json", "/.json"}, // nothing before the suffix: kept
		{"/api/v1.json/orders", "/api/v1.json/orders"}, // only the last segment loses a suffix
		{"/app.js", "/app.js"},                         // not a format suffix
		{"/a/b.tar.json", "/a/b.tar"},                  // one suffix only
		{"/a. /b", "/a/b"},
		{"/ /x", "/x"}, // a segment of spaces is no segment
		{"/login.jsonx", "/login.jsonx"},
	} {
		assert.Equal(t, c.want, e.Key(c.in), c.in)
	}
	var exact *pathnorm.Equivalence
	assert.Equal(t, "/API/Login.json", exact.Key("/API/Login.json/"))
	zero := &pathnorm.Equivalence{}
	assert.Equal(t, "/API/x;a", zero.Key("/API//x;a/"))
	assert.Equal(t, "/api/", e.RouteKey("/API/"))
	assert.Equal(t, "/api", e.RouteKey("/API"))
	noSuffix := &pathnorm.Equivalence{Fold: true, TrimDots: true, DropParams: true}
	assert.Equal(t, "/api/login.json", noSuffix.Key("/api/login.json"))
}

func TestPlainKeysDoNotAllocate(t *testing.T) {
	e := pathnorm.Lenient()
	n := testing.AllocsPerRun(100, func() { _ = e.Key("/api/products/123") })
	assert.Zero(t, n)
}

func TestStripSegments(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"/API;x/v1/", 1, "/v1/"}, {"/api", 1, "/"}, {"/api/", 1, "/"}, {"/a/b/c", 2, "/c"}, {"/a/b", 0, "/a/b"}, {"/", 1, "/"},
	} {
		assert.Equal(t, c.want, pathnorm.Lenient().StripSegments(c.in, c.n), c.in)
	}
	assert.Equal(t, "/x", pathnorm.Lenient().StripSegments("/ /api/x", 1), "a segment the key drops is not counted")
	assert.Equal(t, "/x", pathnorm.Lenient().StripSegments("/api/;a/x", 1))
	var exact *pathnorm.Equivalence
	assert.Equal(t, "/api/x", exact.StripSegments("/ /api/x", 1))
	assert.Equal(t, 0, pathnorm.Segments("/"))
	assert.Equal(t, 1, pathnorm.Segments("/api/"))
	assert.Equal(t, 2, pathnorm.Segments("/api/v1"))
}

// respell writes base (lower-case segments of [a-z0-9_-]) as a client
// could send it so that a lenient backend reads it as base: case flips,
// percent-encoding, trailing dots and spaces, ;parameters, a format
// suffix, doubled and trailing slashes.
func respell(r *rand.Rand, base string) string {
	segs := strings.Split(strings.Trim(base, "/"), "/")
	var b strings.Builder
	for i, s := range segs {
		b.WriteString("/")
		if r.IntN(4) == 0 {
			b.WriteString("/")
		}
		for _, c := range []byte(s) {
			switch r.IntN(5) {
			case 0:
				b.WriteString(strings.ToUpper(string(c)))
			case 1:
				fmt.Fprintf(&b, "%%%02X", c)
			default:
				b.WriteByte(c)
			}
		}
		if i == len(segs)-1 && r.IntN(3) == 0 {
			b.WriteString([]string{".json", ".XML", ".html", ".Csv"}[r.IntN(4)])
		}
		for range r.IntN(3) {
			b.WriteString([]string{".", "%20", "%2e", "%2E"}[r.IntN(4)])
		}
		if r.IntN(3) == 0 {
			b.WriteString(";jsessionid=" + fmt.Sprint(r.IntN(1000)))
		}
	}
	if r.IntN(2) == 0 {
		b.WriteString("/")
	}
	return b.String()
}

// FuzzSpellingsShareAKey checks that every spelling the equivalence calls
// equal to a path lands on that path's key (the key every counter is
// kept under), and that a key is its own key.
func FuzzSpellingsShareAKey(f *testing.F) {
	f.Add("api/login", uint64(1))
	f.Add("a/b/c", uint64(7))
	f.Add("x", uint64(42))
	e := pathnorm.Lenient()
	f.Fuzz(func(t *testing.T, base string, seed uint64) {
		var segs []string
		for _, s := range strings.Split(base, "/") {
			s = strings.Map(func(r rune) rune {
				switch {
				case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
					return r
				case r >= 'A' && r <= 'Z':
					return r + 'a' - 'A'
				}
				return -1
			}, s)
			if s != "" {
				segs = append(segs, s)
			}
		}
		if len(segs) == 0 {
			return
		}
		want := "/" + strings.Join(segs, "/")
		require.Equal(t, want, e.Key(want))
		r := rand.New(rand.NewPCG(seed, seed>>1|1))
		for range 8 {
			sent := respell(r, want)
			p, err := pathnorm.Normalize(sent, pathnorm.Strict)
			if err != nil {
				t.Fatalf("%q (spelling of %q) refused: %v", sent, want, err)
			}
			if got := e.Key(p); got != want {
				t.Fatalf("%q (spelling of %q) keyed %q", sent, want, got)
			}
		}
	})
}

// FuzzKey: any accepted path has a key with a leading slash and no
// trailing one, no upper-case ASCII, no ;parameters, and no segment that
// ends in a dot or a space.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"/", "/api/login.json", "/A;b/c. ", "/ſ/K", "/x.json.xml"} {
		f.Add(s)
	}
	e := pathnorm.Lenient()
	f.Fuzz(func(t *testing.T, sent string) {
		p, err := pathnorm.Normalize(sent, pathnorm.Strict)
		if err != nil {
			return
		}
		k := e.Key(p)
		if !strings.HasPrefix(k, "/") || (k != "/" && strings.HasSuffix(k, "/")) || strings.ContainsAny(k, ";ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("key %q of %q", k, p)
		}
		for _, seg := range strings.Split(k[1:], "/") {
			if k != "/" && (seg == "" || strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ")) {
				t.Fatalf("key %q of %q has segment %q", k, p, seg)
			}
		}
	})
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "//a//b": "/a/b", "/a/../../b": "/b", "/a/./b/": "/a/b/", "a": "/a", "/api/../text": "/text",
	} {
		assert.Equal(t, want, pathnorm.Clean(in), in)
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"/api/../x", "//a", "/./", "/a/b/../../..", "/%2e%2e/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c := pathnorm.Clean(in)
		if !strings.HasPrefix(c, "/") {
			t.Fatalf("%q cleaned to %q: not absolute", in, c)
		}
		for _, seg := range strings.Split(c, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("%q cleaned to %q: dot segment left", in, c)
			}
		}
		if strings.Contains(c, "//") {
			t.Fatalf("%q cleaned to %q: empty segment left", in, c)
		}
		if pathnorm.Clean(c) != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, c, pathnorm.Clean(c))
		}
	})
}

func BenchmarkKey(b *testing.B) {
	e := pathnorm.Lenient()
	for _, p := range []string{"/api/products/123", "/static/app.js", "/API/Login.json"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.Key(p)
			}
		})
	}
}

// A dropped segment that ends a path keeps its slash: /api/;x is /api/ to
// Tomcat, so it stays under a route "/api/".
func TestDroppedLastSegmentKeepsTheSlash(t *testing.T) {
	e := pathnorm.Lenient()
	for _, p := range []string{"/api/;x", "/api/ ", "/api/;", "/api/x.json/ "} {
		assert.True(t, strings.HasSuffix(e.RouteKey(p), "/"), p)
	}
	assert.Equal(t, "/api/x/", e.RouteKey("/api/x.json/ "))
}
