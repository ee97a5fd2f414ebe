package apikey

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
)

// Where a key was found, as returned by KeyFrom.
const (
	FromQuery  = "query"  // the KEY query parameter (seed 000's only place)
	FromHeader = "header" // X-API-Key
	FromBearer = "bearer" // Authorization: Bearer <key>
)

// QueryParam is the query parameter carrying a key. The match is
// case-sensitive, as in seed 000: "key=" is an ordinary parameter.
const QueryParam = "KEY"

// HeaderName is the header carrying a key.
const HeaderName = "X-API-Key"

// KeyFrom returns the key presented with r and where it was found: the first
// non-empty KEY query parameter, else X-API-Key, else an Authorization header
// with the Bearer scheme carrying a key-shaped token (64 lower-case hex
// characters; any other bearer token, a JWT say, is the upstream's). It
// returns "", "" if there is none. A parameter name
// is compared after percent-decoding, so "%4BEY=" counts as KEY (and Strip
// removes it), exactly as url.Values would see it. KeyFrom does not look the
// key up and never touches Redis.
func KeyFrom(r *http.Request) (key, where string) {
	if r.URL != nil {
		q := r.URL.RawQuery
		for q != "" {
			var piece string
			piece, q, _ = strings.Cut(q, "&")
			if v, ok := keyParam(piece); ok && v != "" {
				return v, FromQuery
			}
		}
	}
	if v := strings.TrimSpace(r.Header.Get(HeaderName)); v != "" {
		return v, FromHeader
	}
	if v, ok := bearer(r.Header.Get("Authorization")); ok && isKeyShaped(v) {
		return v, FromBearer
	}
	return "", ""
}

// Strip removes the key from every place KeyFrom looks, so that it never
// reaches the upstream (or a log of the forwarded request):
//   - every KEY query parameter is deleted from RawQuery (and RequestURI);
//     all other parameters, repeated ones included, keep their order and
//     their exact bytes;
//   - X-API-Key is deleted;
//   - Authorization is deleted only if it uses the Bearer scheme; Basic and
//     other schemes meant for the upstream pass through.
func Strip(r *http.Request) {
	if r.URL != nil && r.URL.RawQuery != "" {
		if q, changed := stripQuery(r.URL.RawQuery); changed {
			r.URL.RawQuery = q
			if q == "" {
				r.URL.ForceQuery = false
			}
			if r.RequestURI != "" {
				path, _, _ := strings.Cut(r.RequestURI, "?")
				if q != "" {
					path += "?" + q
				}
				r.RequestURI = path
			}
		}
	}
	r.Header.Del(HeaderName)
	if k, ok := bearer(r.Header.Get("Authorization")); ok && isKeyShaped(k) {
		// Only a bearer token that looks like one of our keys is ours; an
		// upstream's own bearer token (a JWT, say) passes through.
		r.Header.Del("Authorization")
	}
}

// isKeyShaped reports whether s has the form of a minted key.
// Shaped reports whether s has the shape of a key this package mints (64
// lower-case hex characters): anything else is some other credential.
func Shaped(s string) bool { return isKeyShaped(s) }

func isKeyShaped(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func stripQuery(raw string) (string, bool) {
	var b strings.Builder
	changed, first := false, true
	q := raw
	for {
		piece, rest, more := strings.Cut(q, "&")
		if _, ok := keyParam(piece); ok {
			changed = true
		} else {
			if !first {
				b.WriteByte('&')
			}
			b.WriteString(piece)
			first = false
		}
		if !more {
			break
		}
		q = rest
	}
	if !changed {
		return raw, false
	}
	return b.String(), true
}

// keyParam reports whether one "name=value" piece of a raw query is the KEY
// parameter and returns its decoded value ("" if it cannot be decoded).
func keyParam(piece string) (string, bool) {
	name, value, _ := strings.Cut(piece, "=")
	if name != QueryParam {
		if !strings.ContainsAny(name, "%+") {
			return "", false
		}
		n, err := url.QueryUnescape(name)
		if err != nil || n != QueryParam {
			return "", false
		}
	}
	if !strings.ContainsAny(value, "%+") {
		return value, true
	}
	v, err := url.QueryUnescape(value)
	if err != nil {
		return "", true
	}
	return v, true
}

// bearer parses "Bearer <token>" (scheme case-insensitive, RFC 7235).
// Bearer returns the token of r's Authorization header with the Bearer
// scheme, whatever its shape (a key, a JWT, the upstream's own token).
func Bearer(r *http.Request) (string, bool) {
	tok, ok := bearer(r.Header.Get("Authorization"))
	return tok, ok && tok != ""
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// Truthy decides whether the upstream's "success" field (decoded from JSON
// into an any) means a successful login. Seed 000 used Python truthiness, so
// "success":"false" logged the user in; Bulwark errs toward refusing:
//   - JSON true is success, false is failure;
//   - a string is success unless, trimmed and case-insensitively, it is "",
//     "false", "0", "no", "off" or "null" (so "ok", "true", "yes" succeed);
//   - a number is success when it is non-zero (1 succeeds, 0 fails);
//   - null, a missing field, objects, arrays and anything else are failure.
func Truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "", "false", "0", "no", "off", "null":
			return false
		}
		return true
	case float64:
		return x != 0 && !math.IsNaN(x)
	case float32:
		return x != 0 && !math.IsNaN(float64(x))
	case json.Number:
		f, err := x.Float64()
		return err == nil && f != 0 && !math.IsNaN(f)
	case int:
		return x != 0
	case int64:
		return x != 0
	default:
		return false
	}
}
