package loginname_test

import (
	"testing"
	"unicode/utf8"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
)

func TestCanonicalIdempotentAllRunes(t *testing.T) {
	bad := 0
	for r := rune(0); r <= 0x1FFFF && bad < 10; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		for _, s := range []string{string(r), string(r) + "\u0307"} {
			c := loginname.Canonical(s)
			if c2 := loginname.Canonical(c); c2 != c {
				t.Errorf("Canonical(%+q) = %+q, again %+q", s, c, c2)
				bad++
			}
		}
	}
}

func TestCanonicalIdempotentRandom(t *testing.T) {
	pool := []rune{'a', 'A', ' ', '\u13A0', '\uAB70', '\u13F8', '\u0345', '\u0399', '\u03B9', '\u1FBE', 'ß', 'ẞ', 'İ', 'ı', 'ſ', 'K', '\u0301', '\u0308', '\u3000', 'ｖ', '\u00a0', 'ǅ', 'ǆ', 'Ǆ', 'ﬁ', '\u1E9E', 'Σ', 'ς', '\u0390', '\u1FD3', '\u2126', '\u00b5', '\u212b', '\u0130', '\u0069', '\u0307'}
	seed := uint64(7)
	rnd := func(n int) int {
		seed = seed*6364136223846793005 + 1442695040888963407
		return int((seed >> 33) % uint64(n))
	}
	bad := 0
	for i := 0; i < 300000 && bad < 5; i++ {
		var rs []rune
		for j := rnd(6) + 1; j > 0; j-- {
			rs = append(rs, pool[rnd(len(pool))])
		}
		s := string(rs)
		c := loginname.Canonical(s)
		if c2 := loginname.Canonical(c); c2 != c {
			t.Errorf("Canonical(%+q) = %+q, again %+q", s, c, c2)
			bad++
		}
	}
}

func TestCanonicalTurkishI(t *testing.T) {
	for _, s := range []string{"admİn", "admın", "ADMİN"} {
		if c := loginname.Canonical(s); c != "admin" {
			t.Errorf("Canonical(%q) = %+q", s, c)
		}
	}
}
