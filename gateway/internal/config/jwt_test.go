package config_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

const jwtSecret = "a-partner-secret-of-at-least-32-bytes!"

// jwtKeys are PEM public keys for the jwt section's tests.
type jwtKeys struct {
	ec, rsa string // PEM
	rsaPub  crypto.PublicKey
}

func newJWTKeys(t *testing.T) jwtKeys {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return jwtKeys{ec: pemOf(t, ec.Public()), rsa: pemOf(t, rk.Public()), rsaPub: rk.Public()}
}

func pemOf(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// block indents a PEM as a YAML block scalar under "public_key: |".
func block(pemText string) string {
	return "|\n" + "          " + strings.ReplaceAll(strings.TrimSpace(pemText), "\n", "\n          ") + "\n"
}

func writeJWKSFile(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, keys...)})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestJWTSection(t *testing.T) {
	k := newJWTKeys(t)
	jwks := writeJWKSFile(t, jose.JSONWebKey{Key: k.rsaPub, KeyID: "idp-2026", Algorithm: "RS256", Use: "sig"})
	doc := `
routes:
  - {path: /api/, upstream: http://u, auth: jwt}
  - {path: /, upstream: http://u}
jwt:
  issuer: https://id.example
  audience: bulwark
  leeway: 10s
  jwks_file: ` + jwks + `
  reload_interval: 1m
  keys:
    - kid: partner-1
      alg: HS256
      secret: ${JWT_SECRET}
    - kid: app
      alg: ES256
      public_key: ` + block(k.ec)
	cfg, err := config.Parse([]byte(doc), env(map[string]string{"JWT_SECRET": jwtSecret}))
	require.NoError(t, err)
	j := cfg.JWT
	assert.True(t, j.Enabled())
	assert.Equal(t, "jwt", cfg.Routes[0].Auth)
	assert.Equal(t, "sub", j.PrincipalClaim, "default")
	assert.True(t, j.RequireExp, "default")
	assert.Equal(t, "https://id.example", j.Issuer)
	assert.Equal(t, "bulwark", j.Audience)
	assert.Equal(t, 10*time.Second, j.Leeway)
	assert.Equal(t, time.Minute, j.ReloadInterval)
	assert.Equal(t, jwks, j.JWKSFile)
	require.Len(t, j.Keys, 2)
	assert.Equal(t, "partner-1", j.Keys[0].ID)
	assert.Equal(t, "HS256", j.Keys[0].Alg)
	assert.Equal(t, "ES256", j.Keys[1].Alg)

	red := cfg.Redacted()
	out, err := json.Marshal(red)
	require.NoError(t, err)
	assert.NotContains(t, string(out), jwtSecret, "the redacted dump never holds a secret")
	rj := red["jwt"].(map[string]any)
	assert.Equal(t, "10s", rj["leeway"])
	assert.Equal(t, []map[string]any{{"kid": "partner-1", "alg": "HS256", "secret": "[redacted]"}, {"kid": "app", "alg": "ES256"}}, rj["keys"])
}

func TestJWTDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: http://u}]\n"), env(nil))
	require.NoError(t, err)
	j := cfg.JWT
	assert.False(t, j.Enabled(), "off without keys or a JWKS file")
	assert.Equal(t, "sub", j.PrincipalClaim)
	assert.Equal(t, 30*time.Second, j.Leeway)
	assert.True(t, j.RequireExp)
	assert.Equal(t, 10*time.Second, j.ReloadInterval)

	k := newJWTKeys(t)
	cfg, err = config.Parse([]byte(`
routes: [{path: /, upstream: http://u, auth: jwt}]
jwt:
  principal_claim: email
  require_exp: false
  leeway: 0s
  keys:
    - alg: ES256
      public_key: `+block(k.ec)), env(nil))
	require.NoError(t, err, "a lone key needs no kid")
	assert.Equal(t, "email", cfg.JWT.PrincipalClaim)
	assert.False(t, cfg.JWT.RequireExp)
	assert.Zero(t, cfg.JWT.Leeway)
	require.Len(t, cfg.JWT.Keys, 1)
	assert.Empty(t, cfg.JWT.Keys[0].ID)
}

func TestJWTBad(t *testing.T) {
	k := newJWTKeys(t)
	jwks := writeJWKSFile(t, jose.JSONWebKey{Key: k.rsaPub, KeyID: "app", Algorithm: "RS256"})
	garbage := filepath.Join(t.TempDir(), "garbage.json")
	require.NoError(t, os.WriteFile(garbage, []byte("not json"), 0o600))
	missing := filepath.Join(t.TempDir(), "missing.json")
	route := "routes: [{path: /, upstream: http://u}]\n"
	key := func(kid, alg, field, value string) string {
		s := "    - alg: " + alg + "\n"
		if kid != "" {
			s += "      kid: " + kid + "\n"
		}
		return s + "      " + field + ": " + value + "\n"
	}
	ec := func(kid string) string { return key(kid, "ES256", "public_key", block(k.ec)) }
	hs := func(kid, secret string) string { return key(kid, "HS256", "secret", fmt.Sprintf("%q", secret)) }
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown alg", route + "jwt:\n  keys:\n" + key("a", "RS512", "public_key", block(k.rsa)),
			[]string{`jwt.keys[0].alg: must be HS256, RS256, ES256 or EdDSA, got "RS512"`}},
		{"short secret", route + "jwt:\n  keys:\n" + hs("a", "too-short"),
			[]string{"jwt.keys[0].secret: an HS256 secret must be at least 32 bytes, got 9"}},
		{"missing secret", route + "jwt:\n  keys:\n    - {kid: a, alg: HS256}\n",
			[]string{"jwt.keys[0].secret: an HS256 secret must be at least 32 bytes, got 0"}},
		{"PEM does not parse", route + "jwt:\n  keys:\n" + ec("a") + key("b", "ES256", "public_key", "not-a-pem"),
			[]string{"jwt.keys[1].public_key: no PEM block found"}},
		{"key type does not match alg", route + "jwt:\n  keys:\n" + key("a", "ES256", "public_key", block(k.rsa)),
			[]string{"jwt.keys[0].public_key: key type RSA cannot verify ES256"}},
		{"secret on a public-key alg", route + "jwt:\n  keys:\n" + ec("a") + "      secret: " + jwtSecret + "\n",
			[]string{"jwt.keys[0].secret: ES256 takes a public_key, not a secret"}},
		{"public key on HS256", route + "jwt:\n  keys:\n" + hs("a", jwtSecret) + "      public_key: " + block(k.ec),
			[]string{"jwt.keys[0].public_key: HS256 takes a secret, not a public key"}},
		{"duplicate kid", route + "jwt:\n  keys:\n" + ec("a") + hs("a", jwtSecret),
			[]string{`jwt.keys[1].kid: duplicate kid "a" (also jwt.keys[0])`}},
		{"several keys without kid", route + "jwt:\n  keys:\n" + ec("") + hs("b", jwtSecret),
			[]string{"jwt.keys[0].kid: required when there are several keys"}},
		{"inline key without kid beside a JWKS file", route + "jwt:\n  jwks_file: " + jwks + "\n  keys:\n" + ec(""),
			[]string{"jwt.keys[0].kid: required when there are several keys"}},
		{"kid in both", route + "jwt:\n  jwks_file: " + jwks + "\n  keys:\n" + ec("app"),
			[]string{`jwt.jwks_file: ` + jwks + `: kid "app" is also jwt.keys[0]`}},
		{"unreadable JWKS file", route + "jwt:\n  jwks_file: " + missing + "\n",
			[]string{"jwt.jwks_file: open " + missing + ": no such file or directory"}},
		{"invalid JWKS file", route + "jwt:\n  jwks_file: " + garbage + "\n",
			[]string{"jwt.jwks_file: " + garbage + ": not a JSON Web Key Set"}},
		{"negative leeway, bad interval, empty claim", route + "jwt:\n  leeway: -1s\n  reload_interval: 1ms\n  principal_claim: ''\n  keys:\n" + ec(""),
			[]string{"jwt.leeway: must be at least 0s, got -1s", "jwt.reload_interval: must be at least 100ms, got 1ms", "jwt.principal_claim: must not be empty"}},
		{"auth jwt without the section", "routes: [{path: /, upstream: http://u}, {path: /api/, upstream: http://u, auth: jwt}]\n",
			[]string{"routes[1].auth: jwt needs the jwt section: jwt.keys or jwt.jwks_file"}},
		{"unknown auth", "routes: [{path: /, upstream: http://u, auth: oauth}]\n",
			[]string{`routes[0].auth: must be "", "api_key" or "jwt", got "oauth"`}},
		{"unknown keys", route + "jwt:\n  bogus: 1\n  keys:\n    - {kid: a, alg: HS256, pem: x}\n",
			[]string{"jwt.bogus: unknown key", "jwt.keys[0].pem: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(nil))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), jwtSecret, "errors never repeat a secret")
		})
	}
}
