package traffic

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request is what Observe needs to know about the current request besides
// the client: its path (normalised), whether it is sensitive, the numeric id
// it carries, and the fixed visit window.
type Request struct {
	// Path is the normalised path (NormalizePath).
	Path string
	// Sensitive is true when Path is one of the configured sensitive paths.
	Sensitive bool
	// Pattern is Path with its last all-digit segment replaced by ":id",
	// and ID that segment's value; Pattern is "" when there is none.
	Pattern string
	ID      int64
	// VisitWindow is the fixed window of the visit counter; 0 means 60 s.
	VisitWindow time.Duration
	// Principal identifies the credential the request carried (PrincipalOf),
	// "" for none; its last address feeds impossible travel.
	Principal string
}

// DescribeRequest is Describe for r's path, with r's principal.
func DescribeRequest(r *http.Request, sensitive map[string]bool, window time.Duration) Request {
	req := Describe(r.URL.Path, sensitive, window)
	req.Principal = PrincipalOf(r)
	return req
}

// PrincipalOf returns "key:" and the first 16 hex digits of the SHA-256 of
// the API key r carries (X-API-Key, Authorization: Bearer, or the KEY query
// parameter, in that order), or "" when it carries none. The key itself is
// never stored.
func PrincipalOf(r *http.Request) string {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			key = strings.TrimSpace(a[7:])
		}
	}
	if key == "" {
		key = r.URL.Query().Get("KEY")
	}
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return "key:" + hex.EncodeToString(sum[:8])
}

// NormalizePath lower-cases p and drops trailing slashes, so that
// /API/DATA, /api/data/ and /api/data are one path. The root stays "/".
func NormalizePath(p string) string {
	p = strings.ToLower(p)
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	if p == "" {
		return "/"
	}
	return p
}

// Describe builds the Request for path, with sensitive the normalised
// sensitive paths (a set) and window the visit window.
func Describe(path string, sensitive map[string]bool, window time.Duration) Request {
	r := Request{Path: NormalizePath(path), VisitWindow: window}
	r.Sensitive = sensitive[r.Path]
	r.Pattern, r.ID = idPattern(r.Path)
	return r
}

// idPattern finds the last segment of p made only of digits (at most 18,
// so it fits an int64) and returns p with it replaced by ":id", and its
// value.
func idPattern(p string) (string, int64) {
	end := len(p)
	for end > 0 {
		start := strings.LastIndexByte(p[:end], '/') + 1
		seg := p[start:end]
		if seg != "" && len(seg) <= 18 && strings.Trim(seg, "0123456789") == "" {
			id, err := strconv.ParseInt(seg, 10, 64)
			if err == nil {
				return p[:start] + ":id" + p[end:], id
			}
		}
		if start == 0 {
			break
		}
		end = start - 1
	}
	return "", 0
}
