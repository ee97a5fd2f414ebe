package jwtauth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
)

// Every algorithm signs and verifies, as a lone key without a kid and
// among several keys named by kid.
func TestVerifyEachAlgorithm(t *testing.T) {
	algs := []jose.SignatureAlgorithm{jose.HS256, jose.RS256, jose.ES256, jose.EdDSA}
	var all []jwtauth.Key
	var signers []signer
	for _, alg := range algs {
		s := newSigner(t, alg, "k-"+string(alg))
		all = append(all, s.key)
		signers = append(signers, s)
	}
	for i, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			lone := newSigner(t, alg, "")
			v := newVerifier(t, jwtauth.Options{Keys: []jwtauth.Key{lone.key}, Leeway: 30 * time.Second})
			p, err := v.Verify(lone.sign(t, claims("alice")), now)
			require.NoError(t, err)
			assert.Equal(t, "alice", p)

			v = newVerifier(t, jwtauth.Options{Keys: all})
			p, err = v.Verify(signers[i].sign(t, claims("bob")), now)
			require.NoError(t, err)
			assert.Equal(t, "bob", p)
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	hs := newSigner(t, jose.HS256, "partner-1")
	rs := newSigner(t, jose.RS256, "app-rsa")
	es := newSigner(t, jose.ES256, "app")
	ed := newSigner(t, jose.EdDSA, "edge")
	keys := []jwtauth.Key{hs.key, rs.key, es.key}
	opts := jwtauth.Options{Keys: keys, Leeway: 30 * time.Second}

	// The classic confusion: an HS256 token whose HMAC secret is the RSA
	// key's public PEM, naming the RSA key.
	confused := signer{alg: jose.HS256, priv: rs.pem, kid: rs.kid}
	noKid := es
	noKid.kid = ""
	otherKid := es
	otherKid.kid = "other"
	tampered := func(tok string) string {
		parts := strings.Split(tok, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":9999999999}`))
		return strings.Join(parts, ".")
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","exp":9999999999}`)) + "."
	noneKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"app"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","exp":9999999999}`)) + "."
	hs384 := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS384","kid":"partner-1"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","exp":9999999999}`)) + ".c2ln"

	tests := []struct {
		name  string
		opts  *jwtauth.Options // nil: opts
		token string
		want  string // the reason after "invalid jwt: "
	}{
		{"expired beyond the leeway", nil, es.sign(t, with(claims("a"), "exp", now.Add(-time.Minute).Unix())), "expired"},
		{"not yet valid beyond the leeway", nil, es.sign(t, with(claims("a"), "nbf", now.Add(time.Minute).Unix())), "not yet valid"},
		{"issued in the future", nil, es.sign(t, with(claims("a"), "iat", now.Add(time.Hour).Unix())), "issued in the future"},
		{"expired with no leeway", &jwtauth.Options{Keys: keys}, es.sign(t, with(claims("a"), "exp", now.Add(-time.Second).Unix())), "expired"},
		{"missing exp", nil, es.sign(t, with(claims("a"), "exp", nil)), "missing exp"},
		{"malformed exp", nil, es.sign(t, with(claims("a"), "exp", "tomorrow")), "malformed exp"},
		{"RS/HS confusion", nil, confused.sign(t, claims("a")), "algorithm does not match the key's"},
		{"alg none", nil, none, "algorithm not allowed"},
		{"alg none naming a key", nil, noneKid, "algorithm not allowed"},
		{"alg none, lone key", &jwtauth.Options{Keys: []jwtauth.Key{newSigner(t, jose.HS256, "").key}}, none, "algorithm not allowed"},
		{"alg not allowed", nil, hs384, "algorithm not allowed"},
		{"tampered payload", nil, tampered(es.sign(t, claims("a"))), "bad signature"},
		{"tampered HS256 payload", nil, tampered(hs.sign(t, claims("a"))), "bad signature"},
		{"another key's signature", nil, signer{alg: jose.ES256, priv: freshEC(t), kid: es.kid}.sign(t, claims("a")), "bad signature"},
		{"unknown kid", nil, otherKid.sign(t, claims("a")), "unknown kid"},
		{"no kid among several keys", nil, noKid.sign(t, claims("a")), "no kid (several keys)"},
		{"key not configured", nil, ed.sign(t, claims("a")), "unknown kid"},
		{"missing principal", nil, es.sign(t, with(claims("a"), "sub", nil)), "missing sub"},
		{"empty principal", nil, es.sign(t, claims("")), "empty sub"},
		{"principal not a string", nil, es.sign(t, claims(true)), "sub is not a string or a number"},
		{"principal an object", nil, es.sign(t, claims(map[string]any{"id": 1})), "sub is not a string or a number"},
		{"missing custom principal claim", &jwtauth.Options{Keys: keys, PrincipalClaim: "email"}, es.sign(t, claims("a")), "missing email"},
		{"wrong issuer", &jwtauth.Options{Keys: keys, Issuer: "https://id.example"}, es.sign(t, with(claims("a"), "iss", "https://evil.example")), "wrong issuer"},
		{"missing issuer", &jwtauth.Options{Keys: keys, Issuer: "https://id.example"}, es.sign(t, claims("a")), "wrong issuer"},
		{"wrong audience", &jwtauth.Options{Keys: keys, Audience: "bulwark"}, es.sign(t, with(claims("a"), "aud", []string{"shop", "blog"})), "wrong audience"},
		{"missing audience", &jwtauth.Options{Keys: keys, Audience: "bulwark"}, es.sign(t, claims("a")), "wrong audience"},
		{"claims not an object", nil, es.signRaw(t, []byte(`["sub"]`)), "claims are not a JSON object"},
		{"claims not JSON", nil, es.signRaw(t, []byte(`sub=alice`)), "claims are not a JSON object"},
		{"claims null", nil, es.signRaw(t, []byte(`null`)), "claims are not a JSON object"},
		{"empty", nil, "", "malformed"},
		{"opaque api key", nil, strings.Repeat("ab", 32), "malformed"},
		{"four segments", nil, es.sign(t, claims("a")) + ".x", "malformed"},
		{"too long", nil, strings.Repeat("a", 20000), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			if tt.opts != nil {
				o = *tt.opts
			}
			p, err := newVerifier(t, o).Verify(tt.token, now)
			require.Error(t, err)
			assert.ErrorIs(t, err, jwtauth.ErrInvalid)
			assert.Equal(t, "invalid jwt: "+tt.want, err.Error())
			assert.Empty(t, p)
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	es := newSigner(t, jose.ES256, "")
	key := []jwtauth.Key{es.key}
	tests := []struct {
		name   string
		opts   jwtauth.Options
		claims map[string]any
		want   string
	}{
		{"expired within the leeway", jwtauth.Options{Leeway: 30 * time.Second}, with(claims("a"), "exp", now.Add(-10*time.Second).Unix()), "a"},
		{"nbf within the leeway", jwtauth.Options{Leeway: 30 * time.Second}, with(claims("a"), "nbf", now.Add(10*time.Second).Unix()), "a"},
		{"nbf passed", jwtauth.Options{}, with(claims("a"), "nbf", now.Add(-time.Second).Unix()), "a"},
		{"no exp when optional", jwtauth.Options{ExpOptional: true}, with(claims("a"), "exp", nil), "a"},
		{"numeric principal", jwtauth.Options{}, claims(12345), "12345"},
		{"large numeric principal", jwtauth.Options{}, claims(jsonNumber("123456789012345678901234567890")), "123456789012345678901234567890"},
		{"negative principal", jwtauth.Options{}, claims(-7), "-7"},
		{"fractional principal", jwtauth.Options{}, claims(1.5), "1.5"},
		{"exponent principal", jwtauth.Options{}, claims(jsonNumber("1e3")), "1000"},
		{"principal returned as it is", jwtauth.Options{}, claims("Alice@Example.com "), "Alice@Example.com "},
		{"custom claim", jwtauth.Options{PrincipalClaim: "email"}, with(claims("a"), "email", "a@example.com"), "a@example.com"},
		{"issuer and audience", jwtauth.Options{Issuer: "https://id.example", Audience: "bulwark"},
			with(claims("a"), "iss", "https://id.example", "aud", []string{"shop", "bulwark"}), "a"},
		{"single audience string", jwtauth.Options{Audience: "bulwark"}, with(claims("a"), "aud", "bulwark"), "a"},
		{"audience not checked when unset", jwtauth.Options{}, with(claims("a"), "aud", "anything"), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Keys = key
			p, err := newVerifier(t, tt.opts).Verify(es.sign(t, tt.claims), now)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
		})
	}
}

// A lone key without a kid takes tokens naming any kid; a lone key with a
// kid takes tokens naming it or none.
func TestVerifyLoneKey(t *testing.T) {
	anon := newSigner(t, jose.ES256, "")
	named := newSigner(t, jose.ES256, "app")
	tokenWith := func(kid string) string {
		s := anon
		s.kid = kid
		return s.sign(t, claims("a"))
	}
	v := newVerifier(t, jwtauth.Options{Keys: []jwtauth.Key{anon.key}})
	_, err := v.Verify(tokenWith("whatever"), now)
	require.NoError(t, err)

	v = newVerifier(t, jwtauth.Options{Keys: []jwtauth.Key{named.key}})
	_, err = v.Verify(tokenWith(""), now)
	require.NoError(t, err)
	_, err = v.Verify(tokenWith("app"), now)
	require.NoError(t, err)
	_, err = v.Verify(tokenWith("other"), now)
	assert.EqualError(t, err, "invalid jwt: unknown kid")
}

func TestLooksLikeJWT(t *testing.T) {
	es := newSigner(t, jose.ES256, "")
	hdr := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		s    string
		want bool
	}{
		{es.sign(t, claims("a")), true},
		{hdr(`{"alg":"none"}`) + "." + hdr(`{}`) + ".", true},
		{hdr(`{"alg":"HS256"}`) + ".e30.c2ln", true},
		{strings.Repeat("ab", 32), false},               // an API key
		{"a.b", false},                                  // two segments
		{hdr(`{"alg":"HS256"}`) + ".e30.c2ln.x", false}, // four
		{hdr(`{"typ":"JWT"}`) + ".e30.c2ln", false},     // no alg
		{hdr(`{"alg":7}`) + ".e30.c2ln", false},         // alg not a string
		{hdr(`not json`) + ".e30.c2ln", false},
		{hdr(`{"alg":"HS256"}`) + "..c2ln", false},     // empty payload
		{hdr(`{"alg":"HS256"}`) + ".e30=.c2ln", false}, // padding
		{hdr(`{"alg":"HS256"}`) + ".e3+0.c2ln", false}, // not base64url
		{"." + "e30.c2ln", false},
		{"", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, jwtauth.LooksLikeJWT(tt.s), tt.s)
	}
}

func TestKeys(t *testing.T) {
	genKeys(t)
	rsaPEM := pemOf(t, rsaKey.Public())
	ecPEM := pemOf(t, ecKey.Public())
	edPEM := pemOf(t, edKey.Public())

	_, err := jwtauth.NewHMACKey("", []byte("short"))
	assert.EqualError(t, err, "an HS256 secret must be at least 32 bytes, got 5")

	tests := []struct {
		alg  string
		pem  []byte
		want string // "" accepted
	}{
		{"RS256", rsaPEM, ""},
		{"ES256", ecPEM, ""},
		{"EdDSA", edPEM, ""},
		{"ES256", rsaPEM, "key type RSA cannot verify ES256"},
		{"RS256", ecPEM, "key type ECDSA cannot verify RS256"},
		{"EdDSA", ecPEM, "key type ECDSA cannot verify EdDSA"},
		{"HS256", ecPEM, `a public key verifies RS256, ES256 or EdDSA, not "HS256"`},
		{"RS512", rsaPEM, `a public key verifies RS256, ES256 or EdDSA, not "RS512"`},
		{"ES256", []byte("not pem"), "no PEM block found"},
		{"ES256", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), `PEM block "PRIVATE KEY" is a private key: give the public key`},
		{"ES256", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), `PEM block "PUBLIC KEY" does not parse: `},
	}
	for _, tt := range tests {
		_, err := jwtauth.ParsePublicKey("k", tt.alg, tt.pem)
		if tt.want == "" {
			assert.NoError(t, err, tt.alg)
			continue
		}
		require.Error(t, err, tt.alg)
		assert.Contains(t, err.Error(), tt.want)
	}

	// A certificate and a PKCS #1 RSA public key are accepted too.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	require.NoError(t, err)
	k, err := jwtauth.ParsePublicKey("cert", "ES256", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	require.NoError(t, err)
	assert.Equal(t, jwtauth.Key{ID: "cert", Alg: "ES256"}, jwtauth.Key{ID: k.ID, Alg: k.Alg})
	_, err = jwtauth.ParsePublicKey("p1", "RS256", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	require.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	_, err = jwtauth.ParsePublicKey("small", "RS256", pemOf(t, small.Public()))
	assert.EqualError(t, err, "an RSA key of 1024 bits is too small: at least 2048")

	p384, err := ecdsaP384PEM()
	require.NoError(t, err)
	_, err = jwtauth.ParsePublicKey("k", "ES256", p384)
	assert.EqualError(t, err, "ES256 needs a P-256 key, got P-384")

	s := newSigner(t, jose.ES256, "dup")
	_, err = jwtauth.New(jwtauth.Options{Keys: []jwtauth.Key{s.key, s.key}}, nil)
	assert.ErrorContains(t, err, `duplicate kid "dup"`)
	anon := newSigner(t, jose.ES256, "")
	_, err = jwtauth.New(jwtauth.Options{Keys: []jwtauth.Key{s.key, anon.key}}, nil)
	assert.ErrorContains(t, err, "key 1 has no kid: with several keys every key needs one")
	_, err = jwtauth.New(jwtauth.Options{Keys: []jwtauth.Key{{ID: "x", Alg: "HS256"}}}, nil)
	assert.ErrorContains(t, err, "was not built by this package")
	_, err = jwtauth.New(jwtauth.Options{Keys: []jwtauth.Key{s.key}, Leeway: -time.Second}, nil)
	assert.ErrorContains(t, err, "leeway must not be negative")
}

// jsonNumber is a claim value written as the given JSON number text.
type jsonNumber string

func (n jsonNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }
