// Package loginname reads the login (and password) a login request's body
// names the way the upstream reads it, and spells a login the one way every
// counter keys it. It is the gateway's only reader of login bodies: login
// protection, key minting and the client's features all go through it, so
// none of them can read a different login from the same body.
//
// Two rules close the spellings an attacker uses to put a guess on a
// counter other than the victim's:
//   - Duplicates: a body that names a field twice is read as the upstream
//     reads it. Django, Rails, PHP and Go's json take the last one, so Last
//     is the default; First is there for upstreams that take the first.
//   - Canonical: a login is compared after NFKC normalisation, Unicode case
//     folding and trimming, so "ＶＩＣＴＩＭ" and " Victim" are "victim"
//     (Django normalises usernames with NFKC; most stores compare them
//     case-insensitively).
//
// PHP reads "user.name" and "user name" as "user_name", other frameworks
// do not: a form that spells a wanted field PHP's way is read as naming it
// with no string, which login protection refuses, so no upstream can read
// a login the gateway did not count.
package loginname

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Duplicates says which value of a field named more than once counts.
type Duplicates uint8

const (
	// Last is the default: the value the upstream most likely reads.
	Last Duplicates = iota
	// First takes the first value.
	First
)

// ParseDuplicates reads "last" or "first" ("" is Last).
func ParseDuplicates(s string) (Duplicates, bool) {
	switch strings.ToLower(s) {
	case "", "last":
		return Last, true
	case "first":
		return First, true
	}
	return Last, false
}

// MaxFields bounds how many fields of a body are looked at: a login form
// has a handful. A body with more names no login (every wanted field is
// absent), since what comes after the limit is what the upstream reads.
const MaxFields = 256

// Fields returns the string fields of a JSON object, urlencoded form or
// multipart form body named in want, each under the duplicate rule. A
// field whose counted value is not a string (a JSON number, object or
// array) is absent.
//
// A body that upstreams could read in more than one way names no login:
// every wanted field is absent, which login protection refuses. That is a
// body that does not parse to its end (a JSON error or trailing data, a
// bad escape), one with more than MaxFields fields, a name that only
// matches a wanted one case-insensitively ("USERNAME": Go structs and
// ASP.NET bind it) or in PHP's spelling ("user.name" for "user_name"), a
// multipart part that is not plain form-data (another disposition, a
// transfer encoding, an unparsable header: parsers disagree on those), and
// a form that is also a JSON object.
func Fields(body []byte, contentType string, dup Duplicates, want ...string) map[string]string {
	out := make(map[string]string, len(want))
	var notString map[string]bool // present, but the counted value is no string
	ambiguous := false
	set := func(name, value string, isString bool) {
		for _, w := range want {
			if name != w {
				if strings.EqualFold(name, w) || phpName(name) == w {
					ambiguous = true
				}
				continue
			}
			if _, seen := out[w]; (seen || notString[w]) && dup == First {
				return
			}
			if isString {
				out[w] = value
				delete(notString, w)
			} else {
				if notString == nil {
					notString = map[string]bool{}
				}
				notString[w] = true
				delete(out, w)
			}
		}
	}
	setString := func(k, v string) { set(k, v, true) }
	var ok bool
	mediaType, params, _ := mime.ParseMediaType(contentType)
	switch mediaType {
	case "application/x-www-form-urlencoded":
		t := bytes.TrimLeft(body, " \t\r\n")
		ok = (len(t) == 0 || t[0] != '{') && form(string(body), setString)
	case "multipart/form-data":
		ok = multipartForm(body, params["boundary"], setString)
	default:
		ok = jsonObject(body, set)
	}
	if !ok || ambiguous {
		return map[string]string{}
	}
	return out
}

// form walks an urlencoded body's fields in order; false: a pair does not
// decode, or there are too many.
func form(body string, fn func(k, v string)) bool {
	for n := 0; body != ""; {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		if n++; n > MaxFields {
			return false
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return false
		}
		fn(k, v)
	}
	return true
}

// multipartForm walks a multipart body's form fields in order; false:
// anything parsers could read differently, or too many parts.
func multipartForm(body []byte, boundary string, fn func(k, v string)) bool {
	if boundary == "" {
		return false
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 0; ; n++ {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			return true
		}
		if err != nil || n >= MaxFields || len(part.Header["Content-Disposition"]) != 1 {
			return false
		}
		disp, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil || disp != "form-data" {
			return false
		}
		switch strings.ToLower(part.Header.Get("Content-Transfer-Encoding")) {
		case "", "7bit", "8bit", "binary":
		default:
			return false
		}
		if _, file := params["filename"]; file {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, int64(len(body))))
		if err != nil {
			return false
		}
		fn(params["name"], string(v))
	}
}

// jsonObject walks a JSON object's top-level members in order; false: the
// body is not exactly one object, or has too many members.
func jsonObject(body []byte, fn func(k, v string, isString bool)) bool {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for n := 0; d.More(); n++ {
		if n >= MaxFields {
			return false
		}
		t, err := d.Token()
		if err != nil {
			return false
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return false
		}
		var s string
		isString := len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil
		fn(k, s, isString)
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return false
	}
	_, err := d.Token()
	return err == io.EOF
}

// phpName is a form field name as PHP stores it: '.', ' ' and the first
// '[' (when no ']' closes it) become '_'.
func phpName(k string) string {
	if !strings.ContainsAny(k, ". [") {
		return k
	}
	b := []byte(k)
	for i, c := range b {
		if c == '.' || c == ' ' {
			b[i] = '_'
		}
		if c == '[' && !strings.Contains(k[i:], "]") {
			b[i] = '_'
		}
	}
	return string(b)
}

var folder = cases.Fold()

// Canonical is how a login is counted: NFKC, case-folded, NFKC again (so
// folding cannot leave a compatibility character), without surrounding
// white space. "" stays "".
func Canonical(login string) string {
	ascii := true
	for i := 0; i < len(login); i++ {
		if login[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(strings.TrimSpace(login))
	}
	// One pass can leave work for the next (ı + U+0307 becomes i + U+0307),
	// and x/text's folding swings between the cases of a few scripts
	// (Cherokee): run to a fixed point, or take the smaller spelling of a
	// two-step cycle, which both of its spellings reach.
	s := canonical(login)
	for range 8 {
		t := canonical(s)
		if t == s {
			return s
		}
		if canonical(t) == s {
			return min(s, t)
		}
		s = t
	}
	return s
}

// dotlessI joins the Turkish i's to i: İ folds to "i" + U+0307, ı not at
// all, and Java and most stores compare both equal to i.
var dotlessI = strings.NewReplacer("i\u0307", "i", "ı", "i")

func canonical(s string) string {
	s = norm.NFKC.String(dotlessI.Replace(folder.String(norm.NFKC.String(s))))
	return strings.TrimFunc(s, unicode.IsSpace)
}
