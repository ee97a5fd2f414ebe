package traffic

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathclass"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
)

// Request is what Observe needs to know about the current request besides
// the client: its path (normalised), whether it is sensitive, the numeric id
// it carries, and the fixed visit window.
type Request struct {
	// Path is the path's key under its route's equivalence
	// (pathnorm.Equivalence.Key): every spelling a backend reads as one
	// path counts as one.
	Path string
	// spelling is the path as Classify sorts it (pathnorm.Spelling), when
	// it is not Path.
	spelling string
	// Sensitive is true when Path is one of the configured sensitive paths.
	Sensitive bool
	// Pattern is Path with its last all-digit segment replaced by ":id",
	// and ID that segment's value; Pattern is "" when there is none.
	Pattern string
	ID      int64
	// VisitWindow is the fixed window of the visit counter; 0 means 60 s.
	VisitWindow time.Duration
	// Asset is true for a page asset (pathclass.Assets), counted apart
	// from every other feature; Probe for a path on the probe list
	// (pathclass.Probes). A sensitive path or a probe is never an asset.
	Asset, Probe bool
	// Principal identifies the credential the request carried (PrincipalOf,
	// LoginOf), "" for none; its last address feeds impossible travel.
	Principal string
}

// DescribeRequest is Describe for r's path, with r's principal: its API
// key, or, for a POST to a sensitive path (a login), the login it names.
func DescribeRequest(r *http.Request, sensitive map[string]bool, window time.Duration) Request {
	req := Describe(r.URL.Path, sensitive, window)
	req.Principal = PrincipalOf(r)
	if req.Principal == "" && req.Sensitive && r.Method == http.MethodPost {
		req.Principal, _, _ = LoginOf(r, loginname.Last)
	}
	return req
}

// MaxLoginBody bounds how much of a login request's body LoginOf reads.
const MaxLoginBody = 16 << 10

// loginFields are the body fields that name a login, in order of
// preference.
var loginFields = []string{"username", "login", "email", "user"}

// LoginOf returns "login:" and the first 16 hex digits of the SHA-256 of
// the login (loginname.Canonical) a JSON, form or multipart body names in
// one of loginFields, read by loginname.Fields under dup, or "" for none.
// It reads at most MaxLoginBody bytes and puts them back in front of the
// rest of the body, so the upstream still gets all of it. whole reports
// whether it read the body to its end; err is the body's read error, if
// reading failed (the login is "" then): a caller that set a read deadline
// learns of it here.
func LoginOf(r *http.Request, dup loginname.Duplicates) (login string, whole bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", true, nil
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, MaxLoginBody))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil {
		return "", false, err
	}
	if len(head) == MaxLoginBody {
		return "", r.ContentLength == MaxLoginBody, nil // too large to be a login form
	}
	// Shorter than the limit: the body ended.
	return loginIn(head, r.Header.Get("Content-Type"), dup), true, nil
}

// loginIn is the login a body names, hashed, or "".
func loginIn(head []byte, ct string, dup loginname.Duplicates) string {
	fields := loginname.Fields(head, ct, dup, loginFields...)
	login := ""
	for _, f := range loginFields {
		if login = loginname.Canonical(fields[f]); login != "" {
			break
		}
	}
	if login == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(login))
	return "login:" + hex.EncodeToString(sum[:8])
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

// lenient is the equivalence Describe keys paths by.
var lenient = pathnorm.Lenient()

// Describe is DescribeAs under the default equivalence (pathnorm.Lenient).
func Describe(path string, sensitive map[string]bool, window time.Duration) Request {
	return DescribeAs(lenient, path, sensitive, window)
}

// DescribeAs builds the Request for a normalised path (pathnorm.Normalize)
// keyed by eq, with sensitive the keys (under eq) of the sensitive paths
// and window the visit window.
func DescribeAs(eq *pathnorm.Equivalence, path string, sensitive map[string]bool, window time.Duration) Request {
	r := Request{Path: eq.Key(path), VisitWindow: window}
	if sp := pathnorm.Spelling(path); sp != r.Path {
		r.spelling = sp // a format suffix the key dropped, or another equivalence
	}
	r.Sensitive = sensitive[r.Path]
	r.Pattern, r.ID = idPattern(r.Path)
	return r
}

// visitWindow is r.VisitWindow, or its default of 60 s.
func (r *Request) visitWindow() time.Duration {
	if r.VisitWindow <= 0 {
		return time.Minute
	}
	return r.VisitWindow
}

// Classify sets r.Probe and r.Asset for a request with method on r.Path: a
// probe when the path is on probes, else an asset when it is not sensitive
// and assets has its extension (for a GET or HEAD). See package pathclass.
func (r *Request) Classify(method string, assets pathclass.Assets, probes *pathclass.Probes) {
	p := r.spelling
	if p == "" {
		p = r.Path
	}
	r.Probe = probes.Probe(p)
	r.Asset = !r.Probe && !r.Sensitive && assets.Asset(method, p)
}

// Served is r as the ordinary request the upstream showed it to be
// (Store.Reclassify): a page asset whose answer was no asset's (JSON for
// /api/products/7.png: Rails' format suffix, Express's parseInt, Spring's
// suffix matching ignore the extension). The last segment loses its
// extension, so /api/products/7.png is counted as /api/products/7 (its
// path, its pattern /api/products/:id and id 7), and sensitive is asked
// about that path again. The principal is kept.
func (r Request) Served(sensitive map[string]bool) Request {
	// r.Path is already a key under the route's equivalence: the path
	// without its extension is keyed by no other rule.
	s := DescribeAs(nil, withoutExtension(r.Path), sensitive, r.VisitWindow)
	s.Principal = r.Principal
	return s
}

// withoutExtension drops the extension of p's last segment: /a/7.png is
// /a/7; /a/.png and /a/7 stay as they are.
func withoutExtension(p string) string {
	start := strings.LastIndexByte(p, '/') + 1
	if dot := strings.LastIndexByte(p[start:], '.'); dot > 0 {
		return p[:start+dot]
	}
	return p
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
