package jwtauth_test

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
)

// BenchmarkVerify is one valid token's whole check, among three keys
// found by kid.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.ES256, jose.RS256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			s := newSigner(b, alg, "k")
			other := newSigner(b, jose.HS256, "o1")
			other2 := newSigner(b, jose.HS256, "o2")
			v := newVerifier(b, jwtauth.Options{Keys: []jwtauth.Key{other.key, s.key, other2.key}, Issuer: "https://id.example", Audience: "bulwark"})
			tok := s.sign(b, with(claims("user-123"), "iss", "https://id.example", "aud", "bulwark"))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
