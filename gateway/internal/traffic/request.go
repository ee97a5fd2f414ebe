package traffic

import (
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
