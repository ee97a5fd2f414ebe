package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// maxHeaderSegment bounds the header segment LooksLikeJWT decodes.
const maxHeaderSegment = 2048

// LooksLikeJWT reports whether s has a JWT's shape: three base64url
// segments separated by dots (the last may be empty, as in an unsigned
// token), the first decoding to a JSON object with an "alg". It verifies
// nothing: it tells a JWT from an opaque API key before Verify is asked.
func LooksLikeJWT(s string) bool {
	_, ok := headerAlg(s)
	return ok
}

// headerAlg is the "alg" of a token shaped like a JWT.
func headerAlg(s string) (string, bool) {
	header, rest, ok := strings.Cut(s, ".")
	if !ok {
		return "", false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || header == "" || payload == "" || len(header) > maxHeaderSegment ||
		!base64URL(payload) || !base64URL(sig) {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Alg == "" {
		return "", false
	}
	return h.Alg, true
}

// base64URL reports whether s is unpadded base64url (a dot is not).
func base64URL(s string) bool {
	if len(s)%4 == 1 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
