package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS file: a key set is a few kilobytes.
const maxJWKSBytes = 1 << 20

// ReadJWKS reads a JSON Web Key Set file (RFC 7517: {"keys": [...]}).
// Each key verifies its "alg", or when it has none the one its type
// implies (RSA: RS256, EC P-256: ES256, OKP Ed25519: EdDSA, oct: HS256);
// keys marked "use": "enc" are skipped; a private key's public half is
// used. The errors name the file.
func ReadJWKS(path string) ([]Key, error) {
	data, err := readJWKSFile(path)
	if err != nil {
		return nil, err
	}
	return parseJWKS(path, data)
}

func readJWKSFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // an *fs.PathError names the file
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("%s: %d bytes is too large for a key set (at most %d)", path, len(data), maxJWKSBytes)
	}
	return data, nil
}

// parseJWKS checks every key of a key set; path names the file in errors.
func parseJWKS(path string, data []byte) ([]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%s: not a JSON Web Key Set: %w", path, err)
	}
	if set.Keys == nil {
		return nil, fmt.Errorf(`%s: not a JSON Web Key Set: no "keys" array`, path)
	}
	var keys []Key
	for i, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: keys[%d]: %w", path, i, err)
		}
		if jwk.Use == "enc" {
			continue
		}
		k, err := jwkKey(jwk)
		if err != nil {
			return nil, fmt.Errorf("%s: keys[%d] (kid %q): %w", path, i, jwk.KeyID, err)
		}
		keys = append(keys, k)
	}
	if _, err := newKeySet(keys); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// jwkKey is the verification key of one JWK.
func jwkKey(jwk jose.JSONWebKey) (Key, error) {
	if !jwk.IsPublic() {
		if _, secret := jwk.Key.([]byte); !secret {
			jwk = jwk.Public()
		}
	}
	alg := jwk.Algorithm
	if alg == "" {
		switch k := jwk.Key.(type) {
		case *rsa.PublicKey:
			alg = RS256
		case *ecdsa.PublicKey:
			if k.Curve == elliptic.P256() {
				alg = ES256
			}
		case ed25519.PublicKey:
			alg = EdDSA
		case []byte:
			alg = HS256
		}
		if alg == "" {
			return Key{}, fmt.Errorf(`no "alg", and key type %s implies none of HS256, RS256, ES256, EdDSA`, keyType(jwk.Key))
		}
	}
	if !KnownAlg(alg) {
		return Key{}, fmt.Errorf("algorithm %q is not supported (HS256, RS256, ES256, EdDSA)", alg)
	}
	if alg == HS256 {
		secret, ok := jwk.Key.([]byte)
		if !ok {
			return Key{}, errors.New(`HS256 needs an "oct" key`)
		}
		return NewHMACKey(jwk.KeyID, secret)
	}
	return publicKey(jwk.KeyID, alg, jwk.Key)
}
