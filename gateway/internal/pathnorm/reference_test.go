package pathnorm_test

import (
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/cases"

	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
)

// refKey is a straightforward reading of the documented rules.
// refKey is the equivalence written plainly, for the differential tests.
func refKey(e *pathnorm.Equivalence, p string) string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if e.DropParams {
			if j := strings.IndexByte(s, ';'); j >= 0 {
				s = s[:j]
			}
		}
		if e.Fold {
			s = strings.NewReplacer("i\u0307", "i", "ı", "i").Replace(cases.Fold().String(s))
		}
		if e.TrimDots {
			s = strings.TrimRight(s, ". ")
		}
		if s != "" {
			out = append(out, s)
		}
	}
	for len(out) > 0 {
		s := out[len(out)-1]
		for _, suf := range e.Suffixes {
			if len(s) > len(suf) && strings.EqualFold(s[len(s)-len(suf):], suf) {
				s = s[:len(s)-len(suf)]
				if e.TrimDots {
					s = strings.TrimRight(s, ". ")
				}
				break
			}
		}
		if s != "" {
			out[len(out)-1] = s
			break
		}
		out = out[:len(out)-1]
	}
	return "/" + strings.Join(out, "/")
}

var eqs = []*pathnorm.Equivalence{
	pathnorm.Lenient(),
	{},
	{Fold: true},
	{TrimDots: true},
	{DropParams: true},
	{Suffixes: pathnorm.DefaultSuffixes},
	{Fold: true, TrimDots: true, DropParams: true},
}

func FuzzKeyAgainstAPlainReference(f *testing.F) {
	for _, s := range []string{"/api/login", "/API/x.json/", "/a;b/c.", "/login.json/;x", "/a/ ", "/ſ.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, err := pathnorm.Normalize(p, pathnorm.Strict)
		if err != nil {
			return
		}
		for i, e := range eqs {
			got, want := e.Key(n), refKey(e, n)
			if got != want {
				t.Fatalf("eq %d: Key(%q) = %q, reference %q", i, n, got, want)
			}
		}
	})
}

// Key is not idempotent: the suffix rule looks at the segment that ends
// the spelled path, not the last segment of the key, so a trailing segment
// the rules drop (" ", ";x", "...") hides the suffix.
func TestSuffixRuleAppliesToTheLastKeptSegment(t *testing.T) {
	e := pathnorm.Lenient()
	for _, sent := range []string{"/api/login.json/%20", "/api/login.json/;x", "/api/login.json/;", "/api/login.json/.../"} {
		n, err := pathnorm.Normalize(sent, pathnorm.Strict)
		if err != nil {
			t.Logf("%s refused: %v", sent, err)
			continue
		}
		if k := e.Key(n); k != "/api/login" {
			t.Errorf("Key(%q) = %q, want /api/login (Key(Key) = %q)", n, k, e.Key(k))
		}
	}
}

// Java's equalsIgnoreCase (Spring AntPathMatcher exactMatch) and
// Character.toLowerCase (Spring PathPattern) read U+0130 as 'i'; .NET's
// OrdinalIgnoreCase and Java's equalsIgnoreCase read U+0131 as 'i'.
func TestTurkishIFoldsToI(t *testing.T) {
	e := pathnorm.Lenient()
	for _, sent := range []string{"/adm%C4%B0n", "/adm%C4%B1n"} {
		n, err := pathnorm.Normalize(sent, pathnorm.Strict)
		if err != nil {
			t.Fatal(err)
		}
		if k := e.Key(n); k != "/admin" {
			t.Errorf("Key(%q) = %q (%+q), want /admin; unicode.ToLower(U+0130)=%q", n, k, k, unicode.ToLower('\u0130'))
		}
	}
}

func TestKeyAgainstAPlainReference(t *testing.T) {
	alpha := []string{"/", "/", "a", "A", "b", ".", " ", ";", "x=1", ".json", ".JSON", "ſ", "K", "ß", "é", "É", "İ", "..", "%20", "%2e", "json", "Σ", "ς"}
	seed := uint64(1)
	rnd := func(n int) int {
		seed = seed*6364136223846793005 + 1442695040888963407
		return int((seed >> 33) % uint64(n))
	}
	fails := 0
	for i := 0; i < 300_000 && fails < 10; i++ {
		var b strings.Builder
		b.WriteString("/")
		for j := rnd(8); j >= 0; j-- {
			b.WriteString(alpha[rnd(len(alpha))])
		}
		n, err := pathnorm.Normalize(b.String(), pathnorm.Strict)
		if err != nil {
			continue
		}
		for k, e := range eqs {
			if got, want := e.Key(n), refKey(e, n); got != want {
				t.Errorf("eq %d: Key(%q) = %q, reference %q", k, n, got, want)
				fails++
			}
		}
	}
}
