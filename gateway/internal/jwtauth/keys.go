package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// The algorithms a key may verify; every key verifies exactly one.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// MinSecretBytes is the shortest HS256 secret accepted: the hash's output
// size (RFC 7518 section 3.2).
const MinSecretBytes = 32

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// Key is one verification key: its kid, the one algorithm it verifies and
// its material. Build it with NewHMACKey, ParsePublicKey or ReadJWKS.
type Key struct {
	ID  string // the kid tokens name it by; "" only for a lone key
	Alg string // HS256, RS256, ES256 or EdDSA
	key any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// KnownAlg reports whether alg is one a key may be configured with.
func KnownAlg(alg string) bool {
	switch alg {
	case HS256, RS256, ES256, EdDSA:
		return true
	}
	return false
}

// NewHMACKey is an HS256 key; the secret must be at least MinSecretBytes
// long. The error never repeats the secret.
func NewHMACKey(kid string, secret []byte) (Key, error) {
	if len(secret) < MinSecretBytes {
		return Key{}, fmt.Errorf("an HS256 secret must be at least %d bytes, got %d", MinSecretBytes, len(secret))
	}
	return Key{ID: kid, Alg: HS256, key: append([]byte(nil), secret...)}, nil
}

// ParsePublicKey reads the first PEM block of pemData (a PKIX public key,
// a PKCS #1 RSA public key or a certificate) and checks that its type
// matches alg: RSA (at least 2048 bits) for RS256, ECDSA P-256 for ES256,
// Ed25519 for EdDSA.
func ParsePublicKey(kid, alg string, pemData []byte) (Key, error) {
	if !KnownAlg(alg) || alg == HS256 {
		return Key{}, fmt.Errorf("a public key verifies RS256, ES256 or EdDSA, not %q", alg)
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		return Key{}, errors.New("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE") {
			return Key{}, fmt.Errorf("PEM block %q is a private key: give the public key", block.Type)
		}
		return Key{}, fmt.Errorf("PEM block %q is not a PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("PEM block %q does not parse: %w", block.Type, err)
	}
	return publicKey(kid, alg, pub)
}

// publicKey checks that pub is the kind of key alg verifies.
func publicKey(kid, alg string, pub any) (Key, error) {
	ok := false
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg == RS256 && k.N.BitLen() < minRSABits {
			return Key{}, fmt.Errorf("an RSA key of %d bits is too small: at least %d", k.N.BitLen(), minRSABits)
		}
		ok = alg == RS256
	case *ecdsa.PublicKey:
		if alg == ES256 && k.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("ES256 needs a P-256 key, got %s", k.Curve.Params().Name)
		}
		ok = alg == ES256
	case ed25519.PublicKey:
		ok = alg == EdDSA && len(k) == ed25519.PublicKeySize
	}
	if !ok {
		return Key{}, fmt.Errorf("key type %s cannot verify %s", keyType(pub), alg)
	}
	return Key{ID: kid, Alg: alg, key: pub}, nil
}

func keyType(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	case []byte:
		return "symmetric"
	}
	return fmt.Sprintf("%T", k)
}

// keySet finds the key a token names.
type keySet struct {
	byID map[string]*Key
	lone *Key // the only key, when there is exactly one
}

// newKeySet indexes keys by kid: kids are unique, and only a lone key may
// have none.
func newKeySet(keys []Key) (keySet, error) {
	s := keySet{byID: make(map[string]*Key, len(keys))}
	for i := range keys {
		k := &keys[i]
		if k.key == nil || !KnownAlg(k.Alg) {
			return keySet{}, fmt.Errorf("key %d was not built by this package", i)
		}
		switch {
		case k.ID == "" && len(keys) > 1:
			return keySet{}, fmt.Errorf("key %d has no kid: with several keys every key needs one", i)
		case k.ID == "":
		case s.byID[k.ID] != nil:
			return keySet{}, fmt.Errorf("duplicate kid %q", k.ID)
		default:
			s.byID[k.ID] = k
		}
	}
	if len(keys) == 1 {
		s.lone = &keys[0]
	}
	return s, nil
}

func (s keySet) empty() bool { return s.lone == nil && len(s.byID) == 0 }

// find returns the key for a token's kid: the key of that kid, or the lone
// key when the token names none or the lone key has no kid.
func (s keySet) find(kid string) *Key {
	if kid != "" {
		if k := s.byID[kid]; k != nil {
			return k
		}
		if s.lone != nil && s.lone.ID == "" {
			return s.lone
		}
		return nil
	}
	return s.lone
}
