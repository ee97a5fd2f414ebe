// Package pathnorm is the gateway's one policy for request paths. A path is
// percent-decoded once. If what that leaves can be read two ways by the
// servers behind the gateway — a dot segment (also "..;" and "..%20"), a
// backslash, an encoded slash, a second layer of encoding, overlong or
// otherwise invalid UTF-8, a control character — the request is refused;
// otherwise duplicate slashes are merged, and the result is the path the
// gateway routes on, protects and forwards.
//
// A route in Raw mode (for upstreams that need the path exactly as sent)
// also accepts encoded slashes and double encoding: %2F separates segments
// for matching and checking, and "%25xx" stays "%xx" there. The rest of
// the policy holds on every route.
package pathnorm

import (
	"errors"
	"unicode/utf8"
)

// Mode is how much encoding a route accepts.
type Mode uint8

const (
	// Strict is the default: every rule applies.
	Strict Mode = iota
	// Raw also accepts %2F and %25xx, for routes that forward the path
	// as sent.
	Raw
)

// Why a path is refused.
var (
	ErrNotAbsolute    = errors.New("path does not start with /")
	ErrBadEscape      = errors.New("malformed percent-encoding")
	ErrDotSegment     = errors.New("dot segment")
	ErrBackslash      = errors.New("backslash")
	ErrControl        = errors.New("control character")
	ErrInvalidUTF8    = errors.New("invalid or overlong UTF-8")
	ErrEncodedSlash   = errors.New("encoded slash")   // Raw accepts it
	ErrDoubleEncoding = errors.New("double encoding") // Raw accepts it
)

// RawAccepts reports whether a route in Raw mode accepts a path Strict
// refused with err.
func RawAccepts(err error) bool {
	return err == ErrEncodedSlash || err == ErrDoubleEncoding
}

// Normalize applies the policy to a path as the client sent it (percent-
// encoded, without the query) and returns the decoded path with duplicate
// slashes merged, or why it is refused. An empty path is "/". A path that
// needs neither decoding nor merging is returned as is, without
// allocating.
func Normalize(escaped string, mode Mode) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if escaped[0] != '/' {
		return "", ErrNotAbsolute
	}
	if plain(escaped) {
		return escaped, nil
	}
	buf := make([]byte, 0, len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' {
			if i+2 >= len(escaped) || !ishex(escaped[i+1]) || !ishex(escaped[i+2]) {
				return "", ErrBadEscape
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			if c == '/' && mode == Strict {
				return "", ErrEncodedSlash
			}
		}
		switch {
		case c == '\\':
			return "", ErrBackslash
		case c < 0x20 || c == 0x7f:
			return "", ErrControl
		}
		buf = append(buf, c)
	}
	if !utf8.Valid(buf) {
		return "", ErrInvalidUTF8
	}
	for i := 0; i+2 < len(buf); i++ {
		switch {
		case buf[i] == 0xc2 && buf[i+1] >= 0x80 && buf[i+1] <= 0x9f: // C1 controls, U+0080–U+009F
			return "", ErrControl
		case buf[i] == '%' && ishex(buf[i+1]) && ishex(buf[i+2]) && mode == Strict:
			return "", ErrDoubleEncoding
		}
	}
	if n := len(buf); n >= 2 && buf[n-2] == 0xc2 && buf[n-1] >= 0x80 && buf[n-1] <= 0x9f {
		return "", ErrControl
	}

	// Segment by segment, in place: empty segments (duplicate slashes) are
	// dropped, dot segments refused.
	trailing := buf[len(buf)-1] == '/'
	out := buf[:0]
	for i := 0; i < len(buf); {
		j := i + 1
		for j < len(buf) && buf[j] != '/' {
			j++
		}
		if seg := buf[i+1 : j]; len(seg) > 0 {
			if dotSegment(seg) {
				return "", ErrDotSegment
			}
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 || trailing {
		out = append(out, '/')
	}
	return string(out), nil
}

// plain reports whether p needs no decoding, no merging and no dot-segment
// check: visible ASCII without '%' or '\', no "//", no segment starting
// with a dot.
func plain(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= ' ' || c >= 0x7f || c == '%' || c == '\\':
			return false
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.'):
			return false
		}
	}
	return true
}

// dotSegment reports whether a segment, without its ;parameters, is made
// only of dots and spaces: ".", "..", "..;x", "...", ".. " (servers that
// strip parameters, or trailing dots and spaces as Windows does, read all
// of them as "." or "..").
func dotSegment(seg []byte) bool {
	dot := false
	for _, c := range seg {
		switch c {
		case ';':
			return dot
		case '.':
			dot = true
		case ' ':
		default:
			return false
		}
	}
	return dot
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
