package jwtauth_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
)

// The JWKS file: a key added to it verifies after Reload, a bad file keeps
// the old keys, and Run picks up changes by itself.
func TestJWKSReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	writeJWKS(t, path)
	app := newSigner(t, jose.ES256, "app")
	edge := newSigner(t, jose.EdDSA, "edge")
	inline := newSigner(t, jose.HS256, "partner-1")

	logs := &syncBuffer{}
	v, err := jwtauth.New(jwtauth.Options{Keys: []jwtauth.Key{inline.key}, JWKSFile: path},
		slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	appToken, edgeToken := app.sign(t, claims("alice")), edge.sign(t, claims("bob"))

	_, err = v.Verify(appToken, now)
	require.EqualError(t, err, "invalid jwt: unknown kid", "the file has no keys yet")
	_, err = v.Verify(inline.sign(t, claims("p")), now)
	require.NoError(t, err, "inline keys verify alongside the file's")

	writeJWKS(t, path, app.jwk())
	require.NoError(t, v.Reload())
	p, err := v.Verify(appToken, now)
	require.NoError(t, err)
	assert.Equal(t, "alice", p)
	assert.Equal(t, 2, v.Keys())

	writeFile(t, path, []byte("garbage"))
	err = v.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "not a JSON Web Key Set")
	_, err = v.Verify(appToken, now)
	require.NoError(t, err, "a bad file keeps the old keys")

	require.NoError(t, os.Remove(path))
	err = v.Reload()
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
	_, err = v.Verify(appToken, now)
	require.NoError(t, err, "a missing file keeps the old keys")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, 5*time.Millisecond) }()

	writeJWKS(t, path, app.jwk(), edge.jwk())
	require.Eventually(t, func() bool {
		_, err := v.Verify(edgeToken, now)
		return err == nil
	}, 5*time.Second, 5*time.Millisecond, "Run reloads a changed file")
	assert.Eventually(t, func() bool { return bytes.Contains(logs.Bytes(), []byte("jwks reloaded")) }, time.Second, 5*time.Millisecond)

	writeFile(t, path, []byte(`{"keys": [{"kty": "oct", "k": "c2hvcnQ", "kid": "weak"}]}`))
	require.Eventually(t, func() bool { return bytes.Contains(logs.Bytes(), []byte("jwks reload failed")) }, 5*time.Second, 5*time.Millisecond)
	_, err = v.Verify(edgeToken, now)
	require.NoError(t, err, "Run keeps the old keys when the new file is bad")
	failures := bytes.Count(logs.Bytes(), []byte("jwks reload failed"))
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, failures, bytes.Count(logs.Bytes(), []byte("jwks reload failed")), "a bad file is reported once, not at every poll")

	writeJWKS(t, path, app.jwk())
	require.Eventually(t, func() bool {
		_, err := v.Verify(edgeToken, now)
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "a key removed from the file stops verifying")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "Run returns nil when its context ends")
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// A rewrite that keeps the file's size and modification time is still
// seen: Run compares a hash of the content.
func TestJWKSRunSeesSameSizeRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	a := newSigner(t, jose.ES256, "aaaa")
	b := newSigner(t, jose.ES256, "bbbb") // same key, a kid of the same length
	writeJWKS(t, path, a.jwk())
	st, err := os.Stat(path)
	require.NoError(t, err)
	v := newVerifier(t, jwtauth.Options{JWKSFile: path})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = v.Run(ctx, 5*time.Millisecond) }()
	writeJWKS(t, path, b.jwk())
	require.NoError(t, os.Chtimes(path, st.ModTime(), st.ModTime()))
	st2, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, st.Size(), st2.Size())
	require.Eventually(t, func() bool {
		_, err := v.Verify(b.sign(t, claims("x")), now)
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
}

// Configure swaps settings and keys at once, and refuses a bad set whole.
func TestConfigure(t *testing.T) {
	es := newSigner(t, jose.ES256, "app")
	v := newVerifier(t, jwtauth.Options{Keys: []jwtauth.Key{es.key}})
	tok := es.sign(t, with(claims("a"), "iss", "https://id.example"))
	_, err := v.Verify(tok, now)
	require.NoError(t, err)

	require.NoError(t, v.Configure(jwtauth.Options{Keys: []jwtauth.Key{es.key}, Issuer: "https://other.example"}))
	_, err = v.Verify(tok, now)
	require.EqualError(t, err, "invalid jwt: wrong issuer")

	empty := filepath.Join(t.TempDir(), "empty.json")
	writeJWKS(t, empty)
	none := newVerifier(t, jwtauth.Options{JWKSFile: empty})
	assert.Zero(t, none.Keys())
	_, err = none.Verify(tok, now)
	require.EqualError(t, err, "invalid jwt: no keys loaded", "an empty key set verifies nothing")

	err = v.Configure(jwtauth.Options{Keys: []jwtauth.Key{es.key}, JWKSFile: filepath.Join(t.TempDir(), "missing.json")})
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = v.Verify(tok, now)
	require.EqualError(t, err, "invalid jwt: wrong issuer", "a refused Configure changes nothing")
}

func TestReadJWKS(t *testing.T) {
	dir := t.TempDir()
	rs := newSigner(t, jose.RS256, "r")
	es := newSigner(t, jose.ES256, "e")
	ed := newSigner(t, jose.EdDSA, "d")
	noAlg := func(k jose.JSONWebKey) jose.JSONWebKey { k.Algorithm = ""; return k }
	tests := []struct {
		name string
		doc  string
		want string // "" accepted; else in the error
		n    int
	}{
		{"every kind, alg given", jwksDoc(t, rs.jwk(), es.jwk(), ed.jwk()), "", 3},
		{"alg implied by the key type", jwksDoc(t, noAlg(rs.jwk()), noAlg(es.jwk()), noAlg(ed.jwk())), "", 3},
		{"oct key", `{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}`, "", 1},
		{"private key: its public half", jwksDoc(t, jose.JSONWebKey{Key: ecKey, KeyID: "p", Algorithm: "ES256"}), "", 1},
		{"encryption keys skipped", `{"keys":[{"kty":"RSA","use":"enc","kid":"x","n":"AQAB","e":"AQAB"}]}`, "", 0},
		{"empty set", `{"keys":[]}`, "", 0},
		{"garbage", "garbage", "not a JSON Web Key Set", 0},
		{"no keys member", `{}`, `no "keys" array`, 0},
		{"unsupported alg", jwksDoc(t, jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "r", Algorithm: "RS512"}), `keys[0] (kid "r"): algorithm "RS512" is not supported`, 0},
		{"alg not matching the key", jwksDoc(t, jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "r", Algorithm: "ES256"}), "key type RSA cannot verify ES256", 0},
		{"short secret", `{"keys":[{"kty":"oct","kid":"h","k":"c2hvcnQ"}]}`, "an HS256 secret must be at least 32 bytes, got 5", 0},
		{"duplicate kid", jwksDoc(t, rs.jwk(), es.jwk(), func() jose.JSONWebKey { k := ed.jwk(); k.KeyID = "r"; return k }()), `duplicate kid "r"`, 0},
		{"several keys, one without kid", jwksDoc(t, rs.jwk(), func() jose.JSONWebKey { k := es.jwk(); k.KeyID = ""; return k }()), "key 1 has no kid", 0},
		{"bad key", `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`, "keys[0]:", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "jwks"+string(rune('a'+i))+".json")
			require.NoError(t, os.WriteFile(path, []byte(tt.doc), 0o600))
			keys, err := jwtauth.ReadJWKS(path)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Len(t, keys, tt.n)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), path, "the error names the file")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func jwksDoc(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.json")
	writeJWKS(t, path, keys...)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// syncBuffer is a log destination safe to read while Run writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
