// Package jwtauth verifies JWT bearer tokens (RFC 7519) for the gateway: a
// valid token makes its request a principal, named by one of its claims.
// Signatures are checked by go-jose; only HS256, RS256, ES256 and EdDSA are
// accepted, and each key verifies only the one algorithm it is configured
// with, so a token cannot choose how it is checked. Keys come from the
// configuration and from a JWKS file that is re-read while the gateway
// runs; a request reads the current keys through an atomic pointer.
package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrInvalid is wrapped by every error of Verify: the token is no valid
// credential. The wrapping error says why ("invalid jwt: expired").
var ErrInvalid = errors.New("invalid jwt")

// maxTokenBytes bounds the token Verify looks at.
const maxTokenBytes = 16 << 10

// allAlgs are the algorithms a token may name at all; the key it names
// then fixes the one it may use.
var allAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.RS256, jose.ES256, jose.EdDSA}

// Options configure a Verifier. The zero value of each field is the strict
// or empty choice; the gateway's configuration supplies its own defaults
// (leeway 30 s).
type Options struct {
	// PrincipalClaim names the claim that names the principal; "" is "sub".
	PrincipalClaim string
	// Issuer and Audience, when set, must match "iss" and be one of "aud".
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on "exp", "nbf" and "iat".
	Leeway time.Duration
	// ExpOptional accepts tokens without "exp" (require_exp: false).
	ExpOptional bool
	// Keys are the keys given inline.
	Keys []Key
	// JWKSFile is a key set file, read by New and again by Reload and Run.
	JWKSFile string
}

// Verifier checks bearer tokens. It is safe for concurrent use: Verify
// takes no lock.
type Verifier struct {
	log   *slog.Logger
	state atomic.Pointer[state]

	mu   sync.Mutex // serialises Configure, Reload and Run's polls
	seen fileStamp  // the JWKS file as last read; guarded by mu
}

// state is one immutable generation of settings and keys.
type state struct {
	opts     Options
	fileKeys []Key // from opts.JWKSFile
	keys     keySet
}

// New builds a Verifier, reading the JWKS file if one is named. log
// receives Run's reload lines; nil discards them.
func New(o Options, log *slog.Logger) (*Verifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{log: log}
	if err := v.Configure(o); err != nil {
		return nil, err
	}
	return v, nil
}

// Configure replaces the options and keys, reading the JWKS file again. On
// error nothing changes.
func (v *Verifier) Configure(o Options) error {
	if o.PrincipalClaim == "" {
		o.PrincipalClaim = "sub"
	}
	if o.Leeway < 0 {
		return fmt.Errorf("jwt: leeway must not be negative, got %s", o.Leeway)
	}
	o.Keys = append([]Key(nil), o.Keys...)
	v.mu.Lock()
	defer v.mu.Unlock()
	var fileKeys []Key
	var stamp fileStamp
	if o.JWKSFile != "" {
		data, st, err := readStamped(o.JWKSFile)
		if err != nil {
			return fmt.Errorf("jwt: jwks file: %w", err)
		}
		if fileKeys, err = parseJWKS(o.JWKSFile, data); err != nil {
			return fmt.Errorf("jwt: jwks file: %w", err)
		}
		stamp = st
	}
	s, err := newState(o, fileKeys)
	if err != nil {
		return err
	}
	v.state.Store(s)
	v.seen = stamp
	return nil
}

func newState(o Options, fileKeys []Key) (*state, error) {
	all := make([]Key, 0, len(o.Keys)+len(fileKeys))
	all = append(append(all, o.Keys...), fileKeys...)
	keys, err := newKeySet(all)
	if err != nil {
		return nil, fmt.Errorf("jwt: keys: %w", err)
	}
	return &state{opts: o, fileKeys: fileKeys, keys: keys}, nil
}

// Keys is how many keys verify tokens now, inline and from the file.
func (v *Verifier) Keys() int {
	s := v.state.Load()
	return len(s.opts.Keys) + len(s.fileKeys)
}

// Verify checks token's signature with the key it names (by kid) and
// that key's one algorithm, then its time claims at now (with the leeway),
// issuer and audience, and returns the principal claim as it is: a string,
// or a number written in decimal. Every error wraps ErrInvalid.
func (v *Verifier) Verify(token string, now time.Time) (string, error) {
	s := v.state.Load()
	if len(token) > maxTokenBytes {
		return "", invalid("too long")
	}
	jws, err := jose.ParseSignedCompact(token, allAlgs)
	if err != nil {
		if alg, ok := headerAlg(token); ok && !slices.Contains(allAlgs, jose.SignatureAlgorithm(alg)) {
			return "", invalid("algorithm not allowed")
		}
		return "", invalid("malformed")
	}
	h := jws.Signatures[0].Header
	k := s.keys.find(h.KeyID)
	switch {
	case k == nil && s.keys.empty():
		return "", invalid("no keys loaded")
	case k == nil && h.KeyID == "":
		return "", invalid("no kid (several keys)")
	case k == nil:
		return "", invalid("unknown kid")
	case h.Algorithm != k.Alg:
		return "", invalid("algorithm does not match the key's")
	}
	payload, err := jws.Verify(k.key)
	if err != nil {
		return "", invalid("bad signature")
	}
	return s.check(payload, now)
}

// check reads the verified claims.
func (s *state) check(payload []byte, now time.Time) (string, error) {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return "", invalid("claims are not a JSON object")
	}
	var std jwt.Claims
	registered := [...]struct {
		name string
		dst  any
	}{{"iss", &std.Issuer}, {"aud", &std.Audience}, {"exp", &std.Expiry}, {"nbf", &std.NotBefore}, {"iat", &std.IssuedAt}}
	for _, c := range registered {
		if raw, ok := claims[c.name]; ok {
			if err := json.Unmarshal(raw, c.dst); err != nil {
				return "", invalid("malformed " + c.name)
			}
		}
	}
	o := &s.opts
	if std.Expiry == nil && !o.ExpOptional {
		return "", invalid("missing exp")
	}
	want := jwt.Expected{Issuer: o.Issuer, Time: now}
	if o.Audience != "" {
		want.AnyAudience = jwt.Audience{o.Audience}
	}
	if err := std.ValidateWithLeeway(want, o.Leeway); err != nil {
		return "", invalid(claimsReason(err))
	}
	return principal(claims[o.PrincipalClaim], o.PrincipalClaim)
}

func claimsReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return "expired"
	case errors.Is(err, jwt.ErrNotValidYet):
		return "not yet valid"
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "issued in the future"
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrInvalidAudience):
		return "wrong audience"
	}
	return "claims refused"
}

// principal is the claim's string, or its number in decimal.
func principal(raw json.RawMessage, claim string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", invalid("missing " + claim)
	}
	var p string
	switch c := raw[0]; {
	case c == '"':
		if err := json.Unmarshal(raw, &p); err != nil {
			return "", invalid("malformed " + claim)
		}
	case c == '-' || c >= '0' && c <= '9':
		p = decimal(string(raw))
	default:
		return "", invalid(claim + " is not a string or a number")
	}
	if p == "" {
		return "", invalid("empty " + claim)
	}
	return p, nil
}

// decimal writes a JSON number without an exponent: an integer as it is
// (any size), any other number as the shortest decimal of its float64.
func decimal(n string) string {
	integer := true
	for i := range len(n) {
		if c := n[i]; (c < '0' || c > '9') && !(i == 0 && c == '-') {
			integer = false
			break
		}
	}
	if integer {
		return n
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return "" // out of range: refused as empty
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalid, reason)
}
