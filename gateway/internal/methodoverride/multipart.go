package methodoverride

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// ErrUnreadable: a multipart body names an override parameter in a part
// header that its parts, read with the boundary the Content-Type names, do
// not account for, so its value cannot be known.
var ErrUnreadable = errors.New("a method override in a multipart body that cannot be read unambiguously")

// FromMultipart returns the override fields of a multipart body (any
// multipart/* type: Rack reads multipart/mixed and multipart/related as
// forms too).
//
// Finding them does not depend on the boundary, which parsers read
// differently (Rack takes the last "boundary=" in the Content-Type, even
// inside another parameter's quotes): every line of the body that starts
// a Content-Disposition or Content-ID header (after blanks, any case,
// folded lines joined) is searched for a name that Param reads as an
// override parameter: name=, name*= (RFC 2231), filename= (Rack's name for
// a part without one), quoted with " or ' (PHP) or not; Content-ID is
// older Rack's name for a part. A file whose content holds such a line is
// found too.
//
// The values are read with mime/multipart and the Content-Type's boundary.
// When the parts read do not account for every line found (no single
// boundary, a body that does not parse, a header only another boundary
// would show), FromMultipart returns the overrides found, without methods,
// and ErrUnreadable.
func FromMultipart(body []byte, contentType string) ([]Override, error) {
	var found []string
	for _, h := range partHeaders(body) {
		if p := headerParam(h.name, h.value); p != "" {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	out, err := readParts(body, contentType)
	if err != nil || len(out) != len(found) {
		out = make([]Override, len(found))
		for i, p := range found {
			out[i] = Override{Where: `form field "` + p + `"`}
		}
		return out, ErrUnreadable
	}
	return out, nil
}

// readParts reads body's parts with the boundary contentType names, which
// must be the only "boundary" in it, and returns an Override for each part
// header that names an override parameter, with the part's content as its
// method.
func readParts(body []byte, contentType string) ([]Override, error) {
	if strings.Count(strings.ToLower(contentType), "boundary") != 1 {
		return nil, ErrUnreadable
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, ErrUnreadable
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []Override
	for {
		// Raw: a Content-Transfer-Encoding is not decoded, as Rack and
		// PHP do not decode it.
		part, err := mr.NextRawPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, ErrUnreadable
		}
		var content []byte
		read := false
		for _, name := range []string{"Content-Disposition", "Content-Id"} {
			for _, v := range part.Header.Values(name) {
				p := headerParam(name, v)
				if p == "" {
					continue
				}
				if !read {
					if content, err = io.ReadAll(part); err != nil {
						return nil, ErrUnreadable
					}
					read = true
				}
				out = append(out, Override{Where: `form field "` + p + `"`, Method: method(string(content))})
			}
		}
	}
}

type header struct{ name, value string }

// partHeaders returns every line of body that starts a Content-Disposition
// or Content-ID header, blanks before the name or the colon allowed, with
// its folded continuation lines; lines end at LF, CRLF or a bare CR.
func partHeaders(body []byte) []header {
	var out []header
	for i := 0; i < len(body); {
		end := lineEnd(body, i)
		next := afterEOL(body, end)
		line := bytes.TrimLeft(body[i:end], " \t")
		for _, name := range []string{"Content-Disposition", "Content-Id"} {
			if len(line) < len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
				continue
			}
			rest := bytes.TrimLeft(line[len(name):], " \t")
			if len(rest) == 0 || rest[0] != ':' {
				continue
			}
			v := string(rest[1:])
			for next < len(body) && (body[next] == ' ' || body[next] == '\t') {
				e := lineEnd(body, next)
				v += " " + string(body[next:e])
				next = afterEOL(body, e)
			}
			out = append(out, header{name, v})
			break
		}
		i = next
	}
	return out
}

func lineEnd(b []byte, i int) int {
	for i < len(b) && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

func afterEOL(b []byte, end int) int {
	switch {
	case end >= len(b):
		return end
	case b[end] == '\r' && end+1 < len(b) && b[end+1] == '\n':
		return end + 2
	}
	return end + 1
}

// headerParam returns the override parameter a part header names, or "".
func headerParam(name, v string) string {
	if strings.EqualFold(name, "Content-Id") {
		// Older Rack named a part by its Content-ID, as sent.
		v = strings.TrimSpace(v)
		if p := Param(v); p != "" {
			return p
		}
		return Param(strings.Trim(v, "<>"))
	}
	if _, params, err := mime.ParseMediaType(v); err == nil {
		// RFC 2231 encodings and continuations, decoded.
		if p := Param(params["name"]); p != "" {
			return p
		}
	}
	// Leniently, every name=, name*=, name*0*= and filename=.
	lower := strings.ToLower(v)
	for i := 0; i < len(v); {
		j := strings.Index(lower[i:], "name")
		if j < 0 {
			break
		}
		k := i + j + len("name")
		i = k
		for k < len(v) && (v[k] == '*' || '0' <= v[k] && v[k] <= '9') {
			k++
		}
		for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
			k++
		}
		if k >= len(v) || v[k] != '=' {
			continue
		}
		k++
		for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
			k++
		}
		for _, c := range candidates(v[k:]) {
			if p := Param(c); p != "" {
				return p
			}
		}
	}
	return ""
}

// candidates are the ways parsers read the parameter value at the start
// of s: quoted with " (backslash escapes) or ' (PHP), up to ';' or a
// blank, up to the first tspecial (Rack's token), and after an RFC 2231
// charset'language' prefix.
func candidates(s string) []string {
	var out []string
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		q := s[0]
		var b strings.Builder
		for i := 1; i < len(s) && s[i] != q; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
	}
	word := s
	if i := strings.IndexAny(word, "; \t"); i >= 0 {
		word = word[:i]
	}
	out = append(out, word)
	if i := strings.IndexAny(word, `()<>@,;:\"/[]?=`); i >= 0 {
		out = append(out, word[:i])
	}
	if i := strings.LastIndexByte(word, '\''); i >= 0 {
		out = append(out, word[i+1:])
	}
	return out
}
