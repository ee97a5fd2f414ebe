package methodoverride

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzFromQuery: FromQuery never panics, and it finds every _method (in
// any case) that net/url finds, with the value net/url reads: the lenient
// parser is at least as eager as a strict one.
func FuzzFromQuery(f *testing.F) {
	for _, s := range []string{
		"", "_method=DELETE", "a=1&_METHOD=put", "%5Fmethod=delete", "a=1;_method=x", "_method[]=x",
		".method=x", "+_method=x", "%u005Fmethod=x", "_method%00=x", "%zz=1&_method", "_method_override=x&=&&",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := FromQuery(q)
		methods := make([]string, len(got))
		for i, o := range got {
			if !strings.HasPrefix(o.Where, `query parameter "`) {
				t.Fatalf("FromQuery(%q): Where %q", q, o.Where)
			}
			methods[i] = o.Method
		}
		vals, _ := url.ParseQuery(q) // the pieces it can read, even when err != nil
		for k, vs := range vals {
			if !strings.EqualFold(k, "_method") && !strings.EqualFold(k, "_method_override") {
				continue
			}
			for _, v := range vs {
				if !slices.Contains(methods, method(v)) {
					t.Fatalf("FromQuery(%q) = %v: net/url reads %s=%q", q, got, k, v)
				}
			}
		}
	})
}

// FuzzFromMultipart: FromMultipart never panics, finds every _method field
// mime/multipart reads with the body's boundary, and returns its value
// unless it says the body is unreadable.
func FuzzFromMultipart(f *testing.F) {
	seed := func(fields ...string) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.SetBoundary("XyZ")
		for i := 0; i+1 < len(fields); i += 2 {
			_ = mw.WriteField(fields[i], fields[i+1])
		}
		_ = mw.Close()
		return b.Bytes()
	}
	f.Add(seed("a", "1", "_method", "DELETE"), "XyZ")
	f.Add(seed("_METHOD", "put"), "XyZ")
	f.Add(seed("a", "1"), "XyZ")
	f.Add([]byte("--XyZ\r\nContent-Disposition: form-data; name*=utf-8''%5Fmethod\r\n\r\nDELETE\r\n--XyZ--\r\n"), "XyZ")
	f.Add([]byte("--XyZ\nContent-Disposition: form-data;\n name=_method\n\nDELETE\n--XyZ--\n"), "XyZ")
	f.Add([]byte("--a\r\nContent-Disposition: form-data; name=x\r\n\r\n--b\r\nContent-Disposition: form-data; name=_method\r\n\r\nDELETE\r\n--a--"), "a")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		ct := mime.FormatMediaType("multipart/form-data", map[string]string{"boundary": boundary})
		if ct == "" {
			ct = "multipart/form-data; boundary=" + boundary
		}
		got, err := FromMultipart(body, ct)
		if err != nil && err != ErrUnreadable {
			t.Fatalf("FromMultipart: unexpected error %v", err)
		}
		var methods []string
		for _, o := range got {
			if !strings.HasPrefix(o.Where, `form field "`) {
				t.Fatalf("Where %q", o.Where)
			}
			methods = append(methods, o.Method)
		}
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			p, perr := mr.NextRawPart()
			if perr != nil {
				return
			}
			name := p.FormName()
			content, rerr := io.ReadAll(p)
			if rerr != nil {
				return
			}
			if !strings.EqualFold(name, "_method") {
				continue
			}
			if len(got) == 0 {
				t.Fatalf("FromMultipart(%q, %q) found nothing; mime/multipart reads a %q field", body, ct, name)
			}
			if err == nil && !slices.Contains(methods, method(string(content))) {
				t.Fatalf("FromMultipart(%q, %q) = %v; mime/multipart reads %s=%q", body, ct, got, name, content)
			}
		}
	})
}
