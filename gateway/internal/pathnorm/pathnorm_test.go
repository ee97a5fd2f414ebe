package pathnorm_test

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
)

var policy = []struct {
	in        string
	strict    string // "" when refused
	strictErr error
	raw       string // "" when refused
	rawErr    error
}{
	// accepted, as is or merged
	{"", "/", nil, "/", nil},
	{"/", "/", nil, "/", nil},
	{"/api/users", "/api/users", nil, "/api/users", nil},
	{"/api/users/", "/api/users/", nil, "/api/users/", nil},
	{"//api//v2///users", "/api/v2/users", nil, "/api/v2/users", nil},
	{"/api//", "/api/", nil, "/api/", nil},
	{"//", "/", nil, "/", nil},
	{"/a%20b", "/a b", nil, "/a b", nil},
	{"/%61pi/x", "/api/x", nil, "/api/x", nil},
	{"/caf%C3%A9", "/café", nil, "/café", nil},
	{"/café", "/café", nil, "/café", nil},
	{"/app/secret;a=b", "/app/secret;a=b", nil, "/app/secret;a=b", nil},
	{"/.well-known/x", "/.well-known/x", nil, "/.well-known/x", nil},
	{"/a.b/..c/c..", "/a.b/..c/c..", nil, "/a.b/..c/c..", nil},
	{"/100%25", "/100%", nil, "/100%", nil},
	{"/a%3Fb%23c", "/a?b#c", nil, "/a?b#c", nil},
	{"/a%2e", "/a.", nil, "/a.", nil},
	// the bypasses
	{"/api/../secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/%2e%2e/secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/%2E./secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/..;/secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/..;jsessionid=x/secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/.;/secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/./secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/..", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/.../secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/..%20/secret", "", pathnorm.ErrDotSegment, "", pathnorm.ErrDotSegment},
	{"/api/..\\secret", "", pathnorm.ErrBackslash, "", pathnorm.ErrBackslash},
	{"/api/..%5csecret", "", pathnorm.ErrBackslash, "", pathnorm.ErrBackslash},
	{"/api/..%5Csecret", "", pathnorm.ErrBackslash, "", pathnorm.ErrBackslash},
	{"/api/%252e%252e/secret", "", pathnorm.ErrDoubleEncoding, "/api/%2e%2e/secret", nil},
	{"/api/..%252fsecret", "", pathnorm.ErrDoubleEncoding, "/api/..%2fsecret", nil},
	{"/api/%25%32%65", "", pathnorm.ErrDoubleEncoding, "/api/%2e", nil},
	{"/api/..%2fsecret", "", pathnorm.ErrEncodedSlash, "", pathnorm.ErrDotSegment},
	{"/api/a%2Fb", "", pathnorm.ErrEncodedSlash, "/api/a/b", nil},
	{"/api/a%2F%2Fb", "", pathnorm.ErrEncodedSlash, "/api/a/b", nil},
	{"/api/%c0%ae%c0%ae/secret", "", pathnorm.ErrInvalidUTF8, "", pathnorm.ErrInvalidUTF8},
	{"/api/%e0%80%ae", "", pathnorm.ErrInvalidUTF8, "", pathnorm.ErrInvalidUTF8},
	{"/api/%ed%a0%80", "", pathnorm.ErrInvalidUTF8, "", pathnorm.ErrInvalidUTF8}, // a surrogate
	{"/api/%ff", "", pathnorm.ErrInvalidUTF8, "", pathnorm.ErrInvalidUTF8},
	{"/api/\xc0\xae", "", pathnorm.ErrInvalidUTF8, "", pathnorm.ErrInvalidUTF8},
	{"/api/..%00/secret", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%00", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%0d%0aSet-Cookie:x", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%09", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%7f", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%c2%85", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%c2%85b", "", pathnorm.ErrControl, "", pathnorm.ErrControl},
	{"/api/a%", "", pathnorm.ErrBadEscape, "", pathnorm.ErrBadEscape},
	{"/api/a%zz", "", pathnorm.ErrBadEscape, "", pathnorm.ErrBadEscape},
	{"/api/a%2", "", pathnorm.ErrBadEscape, "", pathnorm.ErrBadEscape},
	{"*", "", pathnorm.ErrNotAbsolute, "", pathnorm.ErrNotAbsolute},
	{"api", "", pathnorm.ErrNotAbsolute, "", pathnorm.ErrNotAbsolute},
}

func TestNormalize(t *testing.T) {
	for _, tc := range policy {
		got, err := pathnorm.Normalize(tc.in, pathnorm.Strict)
		assert.Equal(t, tc.strictErr, err, "strict %q", tc.in)
		assert.Equal(t, tc.strict, got, "strict %q", tc.in)
		got, err = pathnorm.Normalize(tc.in, pathnorm.Raw)
		assert.Equal(t, tc.rawErr, err, "raw %q", tc.in)
		assert.Equal(t, tc.raw, got, "raw %q", tc.in)
		if tc.strictErr != nil && tc.rawErr == nil {
			assert.True(t, pathnorm.RawAccepts(tc.strictErr), "%q", tc.in)
		}
	}
}

func TestPlainPathsDoNotAllocate(t *testing.T) {
	p := "/api/v1/products/12345"
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = pathnorm.Normalize(p, pathnorm.Strict) }))
}

// FuzzNormalizePath: Normalize never panics; a path it accepts has no dot
// segment, backslash, control character, duplicate slash or invalid UTF-8
// (nor, in Strict mode, any %xx left); and it is a fixed point: forwarded
// (escaped the way the proxy escapes it) and normalised again, it is the
// same path.
func FuzzNormalizePath(f *testing.F) {
	for _, tc := range policy {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, mode := range []pathnorm.Mode{pathnorm.Strict, pathnorm.Raw} {
			p, err := pathnorm.Normalize(in, mode)
			if err != nil {
				if p != "" {
					t.Fatalf("%q: refused (%v) but returned %q", in, err, p)
				}
				continue
			}
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\") || !utf8.ValidString(p) {
				t.Fatalf("mode %d: %q → %q", mode, in, p)
			}
			for _, seg := range strings.Split(p, "/") {
				name, _, _ := strings.Cut(seg, ";")
				if name != "" && strings.Trim(name, ". ") == "" && strings.Contains(name, ".") {
					t.Fatalf("mode %d: %q → %q keeps dot segment %q", mode, in, p, seg)
				}
			}
			for _, r := range p {
				if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
					t.Fatalf("mode %d: %q → %q holds control %U", mode, in, p, r)
				}
			}
			if mode == pathnorm.Raw {
				continue
			}
			if encoded(p) {
				t.Fatalf("%q → %q is still encoded", in, p)
			}
			fwd := (&url.URL{Path: p}).EscapedPath()
			if again, err := pathnorm.Normalize(fwd, pathnorm.Strict); err != nil || again != p {
				t.Fatalf("%q → %q, forwarded as %q → %q, %v", in, p, fwd, again, err)
			}
		}
	})
}

// encoded reports whether s holds a %xx escape.
func encoded(s string) bool {
	isHex := func(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

func BenchmarkNormalize(b *testing.B) {
	for _, p := range []string{"/api/v1/products/12345", "/api//v1/caf%C3%A9/12345"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = pathnorm.Normalize(p, pathnorm.Strict)
			}
		})
	}
}

// ;parameters are dropped from every segment, as Tomcat, Jetty and Spring
// route (the equivalence's params rule; WithoutParams before it).
func TestParamsRule(t *testing.T) {
	params := &pathnorm.Equivalence{DropParams: true}
	for in, want := range map[string]string{
		"/login":                 "/login",
		"/login;jsessionid=1":    "/login",
		"/login;a=b/":            "/login/",
		"/api;x/login;y=z":       "/api/login",
		"/;x":                    "/",
		"/a;b;c/d":               "/a/d",
		"":                       "/",
		"/app/secret;a=b/next;c": "/app/secret/next",
	} {
		assert.Equal(t, want, params.RouteKey(in), in)
	}
}
