package pathnorm

import (
	"path"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
)

// Equivalence is the policy that says which spellings of a normalised path
// the servers behind a route read as one resource. Normalize decides
// whether a path is safe to forward at all; Key folds the spellings an
// equivalence joins into one key, and every check that names a path
// compares keys: routing, login protection, sensitive paths, key roles and
// the client's path features. The path forwarded stays the normalised one.
//
// Each rule answers a backend family's reading:
//   - Fold: IIS, ASP.NET, Spring with case-insensitive matching and most
//     Windows-hosted servers route /API/Login as /api/login. Folding is
//     Unicode case folding, so "ſ" (long s) and "K" (Kelvin) fold to s and
//     k as Java's equalsIgnoreCase matches them.
//   - TrimDots: IIS and Windows drop the dots and spaces that end a path
//     segment: /login., /login%20 and /login.%20 open /login.
//   - DropParams: Tomcat, Jetty and Spring drop ";parameters" from every
//     segment before they route: /login;jsessionid=1.
//   - Suffixes: Rails formats and Spring's suffix pattern matching route
//     /login.json (and /login.xml ...) to /login's handler. Only the last
//     segment loses one, and only when something is left before it.
//
// A trailing slash is never significant in a key. The zero Equivalence is
// exact: the key is the normalised path without its trailing slash.
type Equivalence struct {
	Fold       bool
	TrimDots   bool
	DropParams bool
	Suffixes   []string // with their dot, lower case: ".json"
}

// DefaultSuffixes are the format suffixes the default equivalence drops.
var DefaultSuffixes = []string{".json", ".xml", ".html", ".htm", ".txt", ".csv", ".yaml", ".yml"}

// Lenient is the default equivalence: every rule on, DefaultSuffixes.
// Joining more spellings than a backend does protects a path the backend
// does not serve, which costs nothing; joining fewer lets a spelling walk
// around a check.
func Lenient() *Equivalence {
	return &Equivalence{Fold: true, TrimDots: true, DropParams: true, Suffixes: DefaultSuffixes}
}

// Key is the key a normalised path (Normalize's result) is compared by,
// without a trailing slash ("/" for the root). A key that needs no change
// is the path itself, without allocating.
func (e *Equivalence) Key(p string) string {
	k := e.RouteKey(p)
	if len(k) > 1 && k[len(k)-1] == '/' {
		k = k[:len(k)-1]
	}
	return k
}

// RouteKey is Key keeping a trailing slash, for prefix routing where
// "/api/" and "/api" differ.
func (e *Equivalence) RouteKey(p string) string {
	if p == "" {
		return "/"
	}
	if e == nil {
		return p
	}
	if e.plain(p) {
		return p
	}
	// Segment by segment; the suffix rule applies to the last segment the
	// key keeps (segments the rules empty, like " " or ";x", are dropped
	// first), and a path whose dropped segments ended it keeps its
	// trailing slash (/api/;x is /api/ to Tomcat).
	segs := make([]string, 0, 8)
	trailing := p[len(p)-1] == '/'
	rest := p
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if seg == "" {
			continue
		}
		if seg = e.segment(seg); seg == "" {
			trailing = true
			continue
		}
		trailing = false
		segs = append(segs, seg)
	}
	if p[len(p)-1] == '/' {
		trailing = true
	}
	for len(segs) > 0 {
		last := e.suffix(segs[len(segs)-1])
		if last != "" {
			segs[len(segs)-1] = last
			break
		}
		segs, trailing = segs[:len(segs)-1], true
	}
	var b strings.Builder
	b.Grow(len(p))
	for _, seg := range segs {
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 || trailing {
		b.WriteByte('/')
	}
	return b.String()
}

// segment applies the rules but the suffix one to one segment.
func (e *Equivalence) segment(seg string) string {
	if e.DropParams {
		seg, _, _ = strings.Cut(seg, ";")
	}
	if e.Fold {
		seg = fold(seg)
	}
	if e.TrimDots {
		seg = strings.TrimRight(seg, ". ")
	}
	return seg
}

// suffix drops one format suffix from the path's last segment, when
// something is left before it.
func (e *Equivalence) suffix(seg string) string {
	for _, s := range e.Suffixes {
		if len(seg) > len(s) && strings.EqualFold(seg[len(seg)-len(s):], s) {
			seg = seg[:len(seg)-len(s)]
			if e.TrimDots {
				seg = strings.TrimRight(seg, ". ")
			}
			break
		}
	}
	return seg
}

// plain reports whether p is its own route key: no character any rule
// changes and no empty segment.
func (e *Equivalence) plain(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c >= utf8.RuneSelf:
			if e.Fold {
				return false
			}
		case 'A' <= c && c <= 'Z':
			if e.Fold {
				return false
			}
		case c == ';':
			if e.DropParams {
				return false
			}
		case c == '.' || c == ' ':
			// Only a dot or space that ends a segment is trimmed.
			if e.TrimDots && (i+1 == len(p) || p[i+1] == '/') {
				return false
			}
		case c == '/' && i+1 < len(p) && p[i+1] == '/':
			return false
		}
	}
	last := p[strings.LastIndexByte(strings.TrimRight(p, "/"), '/')+1:]
	last = strings.TrimRight(last, "/")
	for _, s := range e.Suffixes {
		if len(last) > len(s) && strings.EqualFold(last[len(last)-len(s):], s) {
			return false
		}
	}
	return true
}

var folder = cases.Fold()

// fold case-folds s: ASCII by hand, anything else by Unicode full case
// folding.
func fold(s string) string {
	ascii, upper := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		upper = upper || ('A' <= c && c <= 'Z')
	}
	switch {
	case ascii && !upper:
		return s
	case ascii:
		return strings.ToLower(s)
	}
	return dotlessI.Replace(folder.String(s))
}

// dotlessI joins the Turkish i's to i, as Java's equalsIgnoreCase and
// Character.toLowerCase (Spring) do: İ folds to "i" + U+0307, ı not at all.
var dotlessI = strings.NewReplacer("i\u0307", "i", "ı", "i")

// spelling is the equivalence paths are classified by.
var spelling = &Equivalence{Fold: true, TrimDots: true, DropParams: true}

// Spelling is a path as it is classified (a page asset, a probe): Lenient's
// key without the format-suffix rule, whatever the route's equivalence, so
// /wlwmanifest.xml keeps its extension and /WP-LOGIN.PHP. is
// /wp-login.php. Probe and asset lists name what clients ask for, not what
// a backend routes.
func Spelling(p string) string { return spelling.Key(p) }

// Segments is the number of segments of a route path: "/" has none,
// "/api" and "/api/" one.
func Segments(p string) int {
	n := 0
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			n++
		}
	}
	return n
}

// StripSegments drops the first n segments of a normalised path that the
// equivalence keeps (a segment it empties, like "/%20/", is dropped with
// them and not counted), keeping a trailing slash: StripSegments("/API;x/v1/",
// 1) is "/v1/". A route that strips its prefix strips what the request
// spelled, which the equivalence may have matched in another spelling.
func (e *Equivalence) StripSegments(p string, n int) string {
	rest := p
	for n > 0 {
		rest = strings.TrimLeft(rest, "/")
		if rest == "" {
			break
		}
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if e == nil || e.segment(seg) != "" {
			n--
		}
	}
	for e != nil && rest != "" {
		// Segments the key drops right after the prefix go with it.
		r := strings.TrimLeft(rest, "/")
		seg, _, _ := strings.Cut(r, "/")
		if r == "" || e.segment(seg) != "" {
			break
		}
		rest = r[len(seg):]
	}
	if rest == "" || rest[0] != '/' {
		rest = "/" + rest
	}
	return rest
}

// Clean resolves dot segments and duplicate slashes, keeping a trailing
// slash: the proxy's last line of defence for paths that did not come
// through Normalize.
func Clean(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
