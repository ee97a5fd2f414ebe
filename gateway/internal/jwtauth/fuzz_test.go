package jwtauth_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
)

// FuzzVerify feeds arbitrary tokens: Verify never panics, every refusal
// wraps ErrInvalid, and the only principal it ever returns is the one the
// test's keys signed (a mutation that still verifies can only be an
// encoding of the same signed token). Fuzz it with a short
// -fuzzminimizetime (2s): minimising a mutated signed token otherwise keeps
// the workers busy for the default minute, which reads as a stall.
func FuzzVerify(f *testing.F) {
	hs := newSigner(f, jose.HS256, "h")
	es := newSigner(f, jose.ES256, "e")
	ed := newSigner(f, jose.EdDSA, "d")
	v := newVerifier(f, jwtauth.Options{Keys: []jwtauth.Key{hs.key, es.key, ed.key}})
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []signer{hs, es, ed} {
		f.Add(s.sign(f, claims("alice")))
		f.Add(s.sign(f, with(claims("alice"), "sub", 42)))
	}
	f.Add(b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"sub":"mallory"}`)) + ".")
	f.Add(b64([]byte(`{"alg":"HS256","kid":"e"}`)) + "." + b64([]byte(`{"sub":"mallory"}`)) + ".AAAA")
	f.Add("")
	f.Add("..")
	f.Add(strings.Repeat("ab", 32))
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(token, now)
		if err != nil {
			if !errors.Is(err, jwtauth.ErrInvalid) || p != "" {
				t.Fatalf("Verify(%q) = %q, %v: a refusal wraps ErrInvalid and names no principal", token, p, err)
			}
			return
		}
		if p != "alice" && p != "42" {
			t.Fatalf("Verify(%q) = %q: a principal nobody signed", token, p)
		}
		if !jwtauth.LooksLikeJWT(token) {
			t.Fatalf("Verify accepted %q, which LooksLikeJWT refuses", token)
		}
	})
}
