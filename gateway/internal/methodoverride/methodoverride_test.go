package methodoverride

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHeaders(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Method",
		"X_http_method_override", "X_HTTP_METHOD", "X-Method_Override"} {
		h[k] = []string{"DELETE"}
		assert.True(t, IsHeader(k), k)
	}
	h.Set("X-Methods", "x")
	h.Set("X-Http-Method-Overrides", "x")
	assert.False(t, IsHeader("X-Methods"))
	assert.False(t, IsHeader("X_methods"))

	h.Add("X-Http-Method-Override", "get, Put")
	ovs := FromHeaders(h)
	assert.Len(t, ovs, 9)
	for _, o := range ovs {
		assert.Contains(t, []string{"DELETE", "GET", "PUT"}, o.Method)
		assert.Contains(t, o.Where, "header ")
	}
	StripHeaders(h)
	assert.Equal(t, http.Header{"X-Methods": {"x"}, "X-Http-Method-Overrides": {"x"}}, h)
}

func TestParam(t *testing.T) {
	for name, want := range map[string]string{
		"_method": "_method", "_METHOD": "_method", "_Method": "_method",
		"%5Fmethod": "_method", "%5fmethod": "_method", "_%6Dethod": "_method", "%u005Fmethod": "_method",
		".method": "_method", "+_method": "_method", "%20_method": "_method", "+.method": "_method",
		"_method[]": "_method", "_method[0]": "_method", "_method%5B%5D": "_method", "_method%00x": "_method",
		"_method_override": "_method_override", "_METHOD.OVERRIDE": "_method_override",
		"method": "", "_methods": "", "__method": "", "x_method": "", "_method_": "", "_meth%6": "",
		"": "", "%": "", "%5": "", "%zz_method": "", "_method%": "",
	} {
		assert.Equal(t, want, Param(name), "%q", name)
	}
}

func TestFromQuery(t *testing.T) {
	assert.Empty(t, FromQuery(""))
	assert.Empty(t, FromQuery("a=1&b=method&method=DELETE"))
	ovs := FromQuery("a=1;_method=delete&%5FMETHOD=+put+&_method&x=%zz")
	require.Len(t, ovs, 3)
	assert.Equal(t, Override{Where: `query parameter "_method"`, Method: "DELETE"}, ovs[0])
	assert.Equal(t, "PUT", ovs[1].Method)
	assert.Equal(t, "", ovs[2].Method, "present without a value")
	assert.Equal(t, `form field "_method"`, FromURLEncoded([]byte("_method=DELETE"))[0].Where)
}

func TestValidMethod(t *testing.T) {
	for _, m := range []string{"GET", "DELETE", "M-SEARCH", "PROPFIND"} {
		assert.True(t, ValidMethod(m), m)
	}
	for _, m := range []string{"", "DEL ETE", "GET,", "GET\x00", "É"} {
		assert.False(t, ValidMethod(m), m)
	}
}

func multipartOf(t *testing.T, fields ...string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		require.NoError(t, mw.WriteField(fields[i], fields[i+1]))
	}
	require.NoError(t, mw.Close())
	return b.Bytes(), mw.FormDataContentType()
}

func TestFromMultipart(t *testing.T) {
	body, ct := multipartOf(t, "a", "1", "_method", "delete", "b", "2")
	ovs, err := FromMultipart(body, ct)
	require.NoError(t, err)
	assert.Equal(t, []Override{{Where: `form field "_method"`, Method: "DELETE"}}, ovs)

	body, ct = multipartOf(t, "a", "1", "method", "DELETE")
	ovs, err = FromMultipart(body, ct)
	require.NoError(t, err)
	assert.Empty(t, ovs)

	part := func(boundary, header, value string) string {
		return "--" + boundary + "\r\n" + header + "\r\n\r\n" + value + "\r\n"
	}
	for _, tc := range []struct {
		name, header string
	}{
		{"quoted", `Content-Disposition: form-data; name="_method"`},
		{"unquoted", `Content-Disposition: form-data; name=_method`},
		{"upper case", `CONTENT-DISPOSITION: form-data; NAME="_METHOD"`},
		{"single quotes (PHP)", `Content-Disposition: form-data; name='_method'`},
		{"RFC 2231", `Content-Disposition: form-data; name*=utf-8''%5Fmethod`},
		{"RFC 2231 continuation", `Content-Disposition: form-data; name*0="_met"; name*1="hod"`},
		{"not form-data", `Content-Disposition: attachment; name="_method"`},
		{"folded", "Content-Disposition: form-data;\r\n name=\"_method\""},
		{"Content-ID (older Rack)", `Content-ID: <_method>`},
		{"filename (Rack's name for a nameless part)", `Content-Disposition: form-data; filename="_method"`},
		{"array", `Content-Disposition: form-data; name="_method[]"`},
	} {
		body := part("XyZ", tc.header, "DELETE") + "--XyZ--\r\n"
		ovs, err := FromMultipart([]byte(body), "multipart/form-data; boundary=XyZ")
		assert.NoError(t, err, tc.name)
		assert.Equal(t, []Override{{Where: `form field "_method"`, Method: "DELETE"}}, ovs, tc.name)
	}

	// Two boundaries: Rack reads the last "boundary=", Go the parameter.
	// The field is found whichever one an upstream uses; its value cannot
	// be known.
	body2 := part("AAA", `Content-Disposition: form-data; name="a"`, "1") +
		part("BBB", `Content-Disposition: form-data; name="_method"`, "DELETE") + "--AAA--\r\n--BBB--\r\n"
	ovs, err = FromMultipart([]byte(body2), `multipart/form-data; boundary=AAA; x="boundary=BBB"`)
	assert.ErrorIs(t, err, ErrUnreadable)
	assert.Equal(t, []Override{{Where: `form field "_method"`}}, ovs)
	ovs, err = FromMultipart([]byte(body2), `multipart/form-data; boundary=AAA`)
	assert.ErrorIs(t, err, ErrUnreadable, "a part header the boundary's parts do not show")
	assert.Len(t, ovs, 1)
	// Not multipart at all, or no boundary: found all the same.
	ovs, err = FromMultipart([]byte(body2), `multipart/form-data`)
	assert.ErrorIs(t, err, ErrUnreadable)
	assert.Len(t, ovs, 1)
	// A body with no such header is no override, however malformed.
	ovs, err = FromMultipart([]byte("--AAA\r\nno end"), `multipart/form-data`)
	assert.NoError(t, err)
	assert.Empty(t, ovs)
}
