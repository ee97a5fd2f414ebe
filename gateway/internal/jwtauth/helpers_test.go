package jwtauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
)

// jwtVerifier is the request path's interface (server.JWTVerifier), kept
// here so this package's tests do not build the server.
type jwtVerifier interface {
	Verify(token string, now time.Time) (principal string, err error)
}

var _ jwtVerifier = (*jwtauth.Verifier)(nil)

// now is the tests' clock: tokens are judged at this instant.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// signer is a test key pair: it signs tokens and gives its verification
// key to the verifier.
type signer struct {
	alg  jose.SignatureAlgorithm
	priv any    // signing key ([]byte for HS256)
	pub  any    // verification key ([]byte for HS256)
	pem  []byte // PKIX PEM of pub (asymmetric only)
	kid  string // put in the token's header when set
	key  jwtauth.Key
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
	ecKey   *ecdsa.PrivateKey
	edKey   ed25519.PrivateKey
)

// genKeys makes one key of each kind per test binary (RSA is slow).
func genKeys(t testing.TB) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
	})
}

var hmacSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// newSigner is a signer of alg whose key has the given kid ("" for none).
func newSigner(t testing.TB, alg jose.SignatureAlgorithm, kid string) signer {
	t.Helper()
	genKeys(t)
	s := signer{alg: alg, kid: kid}
	var err error
	switch alg {
	case jose.HS256:
		s.priv, s.pub = hmacSecret, hmacSecret
		s.key, err = jwtauth.NewHMACKey(kid, hmacSecret)
		require.NoError(t, err)
		return s
	case jose.RS256:
		s.priv, s.pub = rsaKey, rsaKey.Public()
	case jose.ES256:
		s.priv, s.pub = ecKey, ecKey.Public()
	case jose.EdDSA:
		s.priv, s.pub = edKey, edKey.Public()
	default:
		t.Fatalf("no test key for %s", alg)
	}
	s.pem = pemOf(t, s.pub.(crypto.PublicKey))
	s.key, err = jwtauth.ParsePublicKey(kid, string(alg), s.pem)
	require.NoError(t, err)
	return s
}

func pemOf(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign makes a compact token of claims, with the signer's kid in the header.
func (s signer) sign(t testing.TB, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), s.kid)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.priv}, opts)
	require.NoError(t, err)
	tok, err := jwt.Signed(sg).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// signRaw signs payload as it is (no JSON required).
func (s signer) signRaw(t testing.TB, payload []byte) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), s.kid)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.priv}, opts)
	require.NoError(t, err)
	obj, err := sg.Sign(payload)
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

// freshEC is a P-256 key no verifier knows.
func freshEC(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// ecdsaP384PEM is a P-384 public key: the wrong curve for ES256.
func ecdsaP384PEM() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// jwk is the signer's verification key as a JWKS entry.
func (s signer) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.pub, KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

// claims are a valid token's claims at now for subject sub.
func claims(sub any) map[string]any {
	return map[string]any{"sub": sub, "exp": now.Add(time.Hour).Unix(), "iat": now.Add(-time.Minute).Unix()}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// writeJWKS writes a key set file of keys.
func writeJWKS(t testing.TB, path string, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, keys...)})
	require.NoError(t, err)
	writeFile(t, path, b)
}

// writeFile replaces path's content in one rename, as deployment tools
// (and Kubernetes' projected volumes) do.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func newVerifier(t testing.TB, o jwtauth.Options) *jwtauth.Verifier {
	t.Helper()
	v, err := jwtauth.New(o, nil)
	require.NoError(t, err)
	return v
}
