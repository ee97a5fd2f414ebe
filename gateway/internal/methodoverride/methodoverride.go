// Package methodoverride finds where a request names a method other than
// its own. Many frameworks run a POST as the method a header or a
// parameter names (Rails and Sinatra through Rack::MethodOverride,
// Laravel and Symfony, Express's method-override, ASP.NET Core's
// HttpMethodOverrideMiddleware, Spring's HiddenHttpMethodFilter, Slim,
// Echo, gorilla/handlers, WAI): a gateway that checks roles by method must
// check the method the upstream will run, or remove what would change it.
//
// The places: the headers in Headers (also spelled with '_', which
// CGI-style servers read as '-'), and the parameters "_method" and
// "_method_override" in the query string or a form body. The parsers err
// towards finding them: a name is percent-decoded leniently (%XX, %uXXXX,
// '+'; a malformed escape stays as sent), cut at a NUL and at '[' (PHP and
// qs read _method[] as _method), stripped of leading spaces, read with '.'
// and ' ' as '_' (PHP) and compared case-insensitively (Slim reads
// _METHOD); ';' separates parameters as '&' does. A multipart body is
// searched line by line for part headers naming one, whatever boundary an
// upstream's parser would pick.
package methodoverride

import (
	"net/http"
	"strings"
)

// Headers are the override headers, in their canonical spellings:
// X-HTTP-Method-Override (Rack, Symfony, Express, ASP.NET Core, Google
// APIs, gorilla, Echo), X-HTTP-Method (OData, SharePoint),
// X-Method-Override and X-Method (custom middleware, scanners try them).
var Headers = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Method"}

var headerSet = func() map[string]bool {
	m := make(map[string]bool, len(Headers))
	for _, h := range Headers {
		m[http.CanonicalHeaderKey(h)] = true
	}
	return m
}()

// IsHeader reports whether k, a key of an http.Header, is an override
// header: in its canonical spelling, or with '_' for '-'. It does not
// allocate for a canonical key without '_'.
func IsHeader(k string) bool {
	// Every spelling starts with X (canonical keys are capitalised) and
	// is as long as one of Headers: most keys are refused here.
	if len(k) < len("X-Method") || k[0] != 'X' && k[0] != 'x' {
		return false
	}
	switch len(k) {
	case len("X-Method"), len("X-Http-Method"), len("X-Method-Override"), len("X-Http-Method-Override"):
	default:
		return false
	}
	if headerSet[k] {
		return true
	}
	if !strings.Contains(k, "_") {
		return false
	}
	return headerSet[http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))]
}

// StripHeaders deletes every override header from h.
func StripHeaders(h http.Header) {
	for k := range h {
		if IsHeader(k) {
			delete(h, k)
		}
	}
}

// An Override is one method a request names besides its own.
type Override struct {
	// Where says where it was found, for an error message: `header
	// X-Http-Method-Override`, `query parameter "_method"`, `form field
	// "_method"`.
	Where string
	// Method is the value, trimmed and upper-cased, as frameworks read it;
	// "" for an empty one, which they ignore.
	Method string
}

// FromHeaders returns an Override for each element of each override
// header in h: every value of a repeated header, and every element of a
// comma-separated list (frameworks differ in which one they take).
func FromHeaders(h http.Header) []Override {
	var out []Override
	for k, vals := range h {
		if !IsHeader(k) {
			continue
		}
		for _, v := range vals {
			for {
				el, rest, more := strings.Cut(v, ",")
				out = append(out, Override{Where: "header " + k, Method: method(el)})
				if !more {
					break
				}
				v = rest
			}
		}
	}
	return out
}

// FromQuery returns the override parameters in a raw query string.
func FromQuery(rawQuery string) []Override {
	return fromURLEncoded(rawQuery, "query parameter ")
}

// FromURLEncoded returns the override parameters in an
// application/x-www-form-urlencoded body.
func FromURLEncoded(body []byte) []Override {
	return fromURLEncoded(string(body), "form field ")
}

func fromURLEncoded(s, where string) []Override {
	var out []Override
	for s != "" {
		var piece string
		if i := strings.IndexAny(s, "&;"); i >= 0 {
			piece, s = s[:i], s[i+1:]
		} else {
			piece, s = s, ""
		}
		name, value, _ := strings.Cut(piece, "=")
		if p := Param(name); p != "" {
			out = append(out, Override{Where: where + `"` + p + `"`, Method: method(unescape(value))})
		}
	}
	return out
}

// Params are the override parameters' names: _method (Rails, Laravel,
// Express, ASP.NET Core, Spring, Echo, WAI; Slim's _METHOD) and
// _method_override (older WAI).
var Params = []string{"_method", "_method_override"}

// Param returns the override parameter a parameter name, as sent
// (percent-encoded), is read as by some framework, or "".
func Param(name string) string {
	if strings.ContainsAny(name, "%+") {
		name = unescape(name)
	}
	// A NUL ends a name for PHP; '[' starts an array's index (PHP, qs,
	// Rack), whose first element some read as the value.
	if i := strings.IndexAny(name, "\x00["); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimLeft(name, " \t")  // PHP drops leading spaces
	var buf [len("_method_override")]byte // the longest of Params
	if len(name) > len(buf) {
		return ""
	}
	b := buf[:0]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == ' ' || c == '.': // PHP reads both as '_'
			c = '_'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	for _, p := range Params {
		if string(b) == p {
			return p
		}
	}
	return ""
}

// method is an override's value as frameworks read it: trimmed,
// upper-cased.
func method(v string) string {
	return strings.ToUpper(strings.Trim(v, " \t\r\n"))
}

// ValidMethod reports whether m is a method token (RFC 9110): an override
// that is not one names no method a framework would run.
func ValidMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !tchar(m[i]) {
			return false
		}
	}
	return true
}

func tchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// unescape decodes s as a form value, leniently: '+' is a space, %XX a
// byte, %uXXXX (IIS, classic ASP.NET) the character's UTF-8; any other
// '%' stays as sent, as PHP and Rack leave it.
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && s[i+1] == 'u' || c == '%' && i+2 < len(s) && s[i+1] == 'U':
			if i+5 < len(s) {
				if r, ok := hex4(s[i+2 : i+6]); ok {
					b.WriteRune(r)
					i += 5
					continue
				}
			}
			b.WriteByte(c)
		case c == '%' && i+2 < len(s):
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func hex4(s string) (rune, bool) {
	var r rune
	for i := 0; i < 4; i++ {
		d, ok := unhex(s[i])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
