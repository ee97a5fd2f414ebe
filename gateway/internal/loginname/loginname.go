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
// has a handful.
const MaxFields = 256

// Fields returns the string fields of a JSON object, urlencoded form or
// multipart form body named in want, each under the duplicate rule. A
// field whose counted value is not a string (a JSON number, object or
// array) is absent. Names are matched exactly, and for forms also under
// PHP's spelling ('.', ' ' and '[' read as '_').
func Fields(body []byte, contentType string, dup Duplicates, want ...string) map[string]string {
	out := make(map[string]string, len(want))
	var notString map[string]bool // present, but the counted value is no string
	set := func(name, value string, isString bool) {
		for _, w := range want {
			if name != w {
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
	setPHP := func(k string) {
		if p := phpName(k); p != k {
			set(p, "", false)
		}
	}
	mediaType, params, _ := mime.ParseMediaType(contentType)
	switch mediaType {
	case "application/x-www-form-urlencoded":
		form(string(body), func(k, v string) { set(k, v, true); setPHP(k) })
	case "multipart/form-data":
		multipartForm(body, params["boundary"], func(k, v string) { set(k, v, true); setPHP(k) })
	default:
		jsonObject(body, set)
	}
	return out
}

// form walks an urlencoded body's fields in order. Pairs that do not
// decode are skipped, as Go's ParseQuery skips them.
func form(body string, fn func(k, v string)) {
	for n := 0; body != "" && n < MaxFields; n++ {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		fn(k, v)
	}
}

func multipartForm(body []byte, boundary string, fn func(k, v string)) {
	if boundary == "" {
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 0; n < MaxFields; n++ {
		part, err := mr.NextPart()
		if err != nil {
			return
		}
		name := part.FormName()
		if name == "" || part.FileName() != "" {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, int64(len(body))))
		if err != nil {
			return
		}
		fn(name, string(v))
	}
}

// jsonObject walks a JSON object's top-level members in order.
func jsonObject(body []byte, fn func(k, v string, isString bool)) {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for n := 0; d.More() && n < MaxFields; n++ {
		t, err := d.Token()
		if err != nil {
			return
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return
		}
		var s string
		isString := len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil
		fn(k, s, isString)
	}
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
	s := canonical(login)
	// x/text's folding is not idempotent for a few scripts (Cherokee
	// swings between its cases): take the smaller of the two spellings a
	// second pass gives, which both of them reach.
	if t := canonical(s); t < s {
		s = t
	}
	return s
}

func canonical(s string) string {
	s = norm.NFKC.String(folder.String(norm.NFKC.String(s)))
	return strings.TrimFunc(s, unicode.IsSpace)
}
