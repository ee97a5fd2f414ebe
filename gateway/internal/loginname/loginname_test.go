package loginname_test

import (
	"bytes"
	"mime/multipart"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
)

const (
	form = "application/x-www-form-urlencoded"
	js   = "application/json"
)

func TestDuplicatesAreReadAsTheUpstreamReadsThem(t *testing.T) {
	for _, c := range []struct {
		body, ct    string
		dup         loginname.Duplicates
		login, pass string
	}{
		{"username=decoy&username=victim&password=x", form, loginname.Last, "victim", "x"},
		{"username=decoy&username=victim&password=x", form, loginname.First, "decoy", "x"},
		{`{"username":"decoy","username":"victim","password":"x"}`, js, loginname.Last, "victim", "x"},
		{`{"username":"decoy","username":"victim","password":"x"}`, js, loginname.First, "decoy", "x"},
		{`{"username":"decoy","username":{"$ne":1}}`, js, loginname.Last, "", ""},
		{`{"username":7}`, js, loginname.Last, "", ""},
		{`{"a":{"username":"nested"},"username":"top"}`, js, loginname.Last, "top", ""},
		{"user%6Eame=victim", form, loginname.Last, "victim", ""},
		{"user_name=victim&user.name=decoy", form, loginname.Last, "", ""}, // PHP would read decoy
		{"user_name=victim&user name=decoy", form, loginname.First, "", ""},
		{"username=%zz&username=victim", form, loginname.Last, "", ""}, // does not parse to its end
		{"not json", js, loginname.Last, "", ""},
		{`["username","victim"]`, js, loginname.Last, "", ""},
	} {
		f := loginname.Fields([]byte(c.body), c.ct, c.dup, "username", "user_name", "password")
		assert.Equal(t, c.login, f["username"]+f["user_name"], c.body)
		assert.Equal(t, c.pass, f["password"], c.body)
	}
}

func TestMultipartDuplicates(t *testing.T) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("username", "decoy")
	_ = w.WriteField("username", "victim")
	_ = w.WriteField("password", "pw")
	_ = w.Close()
	f := loginname.Fields(b.Bytes(), w.FormDataContentType(), loginname.Last, "username", "password")
	assert.Equal(t, map[string]string{"username": "victim", "password": "pw"}, f)
	f = loginname.Fields(b.Bytes(), w.FormDataContentType(), loginname.First, "username")
	assert.Equal(t, "decoy", f["username"])
}

func TestCanonicalJoinsCompatibleSpellings(t *testing.T) {
	for _, s := range []string{"victim", "Victim", " VICTIM\t", "ｖｉｃｔｉｍ", "ＶＩＣＴＩＭ", "\u3000victim", "Victim "} {
		assert.Equal(t, "victim", loginname.Canonical(s), "%q", s)
	}
	assert.Equal(t, "strasse", loginname.Canonical("Strasse"))
	assert.Equal(t, loginname.Canonical("straße"), loginname.Canonical("STRASSE"))
	assert.Equal(t, "file", loginname.Canonical("ﬁle")) // ligature: NFKC
	assert.Equal(t, "", loginname.Canonical("  "))
}

// FuzzFields: no body panics the reader, and a form that names the login
// once is read as named whatever the rule.
func FuzzFields(f *testing.F) {
	f.Add([]byte("username=a&password=b"), "application/x-www-form-urlencoded", "victim")
	f.Add([]byte(`{"username":"a"}`), "application/json", "x")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nv\r\n--b--\r\n"), "multipart/form-data; boundary=b", "y")
	f.Fuzz(func(t *testing.T, body []byte, ct, login string) {
		for _, d := range []loginname.Duplicates{loginname.First, loginname.Last} {
			_ = loginname.Fields(body, ct, d, "username", "password")
			once := "password=x&username=" + url.QueryEscape(login)
			if got := loginname.Fields([]byte(once), form, d, "username")["username"]; got != login {
				t.Fatalf("%q read as %q", once, got)
			}
		}
		c := loginname.Canonical(login)
		if loginname.Canonical(c) != c {
			t.Fatalf("Canonical(%q) = %q is not canonical: %q", login, c, loginname.Canonical(c))
		}
	})
}
