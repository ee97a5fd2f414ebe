package loginname_test

// Bodies a review found that upstreams read as the victim's login while the
// reader counted a decoy: each must be counted as the upstream reads it, or
// name no login at all.

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
)

// A body the upstream reads as naming "victim" must not be read by the
// gateway as naming another (non-empty) login: the guess would be counted
// on a decoy's counter. Each case below is read as "decoy".
func check(t *testing.T, name, body, ct, upstream string) {
	t.Helper()
	got := loginname.Fields([]byte(body), ct, loginname.Last, "username")["username"]
	if got != "" && loginname.Canonical(got) != loginname.Canonical(upstream) {
		t.Errorf("%s: gateway counts %q, upstream reads %q", name, got, upstream)
	}
}

// MaxFields stops the reader silently; empty pairs count toward it.
func TestAmbiguousBodiesMaxFieldsTruncation(t *testing.T) {
	body := "username=decoy" + strings.Repeat("&", 300) + "&username=victim&password=x"
	vals, _ := url.ParseQuery(body) // Go, Django, PHP, Rails: last wins

	up := vals["username"][len(vals["username"])-1]
	check(t, "form, last", body, form, up)

	js := `{"username":"decoy"` + strings.Repeat(`,"a":0`, 300) + `,"username":"victim"}`
	var m struct {
		Username string `json:"username"`
	}
	_ = json.Unmarshal([]byte(js), &m)
	check(t, "json, 300 members", js, "application/json", m.Username)
}

// A JSON parse error after the first member: the old reader refused the
// whole body; this one keeps what it read. Python's json (Flask,
// FastAPI) accepts NaN and reads the last username.
func TestAmbiguousBodiesJSONPartialParse(t *testing.T) {
	check(t, "json NaN", `{"username":"decoy","x":NaN,"username":"victim"}`, "application/json", "victim")
}

// Go's encoding/json and ASP.NET Core's System.Text.Json (web defaults)
// match member names case-insensitively; the last match wins.
func TestAmbiguousBodiesJSONCaseInsensitiveNames(t *testing.T) {
	body := `{"username":"decoy","USERNAME":"victim","password":"x"}`
	var m struct {
		Username string `json:"username"`
	}
	_ = json.Unmarshal([]byte(body), &m)
	check(t, "json USERNAME", body, "application/json", m.Username)
	body = `{"username":"decoy","u\u017fername":"victim"}` // long s: Go's json folds it too
	m.Username = ""
	_ = json.Unmarshal([]byte(body), &m)
	check(t, "json u-long-s-ername", body, "application/json", m.Username)
}

// Multipart parts Go's reader skips but Werkzeug/Django/PHP read as fields.
func TestAmbiguousBodiesMultipartSkippedParts(t *testing.T) {
	const ct = "multipart/form-data; boundary=b"
	part := func(disp, extra, v string) string {
		return "--b\r\nContent-Disposition: " + disp + "\r\n" + extra + "\r\n" + v + "\r\n"
	}
	first := part(`form-data; name="username"`, "", "decoy")
	for name, p := range map[string]string{
		"attachment disposition":   part(`attachment; name="username"`, "", "victim"),
		"duplicate name param":     part(`form-data; name="x"; name="username"`, "", "victim"),
		"param without value":      part(`form-data; name="username"; foo`, "", "victim"),
		"base64 transfer encoding": part(`form-data; name="username"`, "Content-Transfer-Encoding: base64\r\n", "dmljdGlt"),
	} {
		check(t, name+" (last wins: Django, PHP)", first+p+"--b--\r\n", ct, "victim")
		// duplicate_fields: first (Werkzeug/Flask): the skipped part first.
		if got := loginname.Fields([]byte(p+first+"--b--\r\n"), ct, loginname.First, "username")["username"]; got == "decoy" {
			t.Errorf("%s (first wins: Werkzeug): gateway counts %q, upstream reads victim", name, got)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A JSON body sent as a form: Go handlers that json.Decode(r.Body) without
// looking at Content-Type (and express.json({type: "*/*"})) read victim.
func TestAmbiguousBodiesFormContentTypeJSONPolyglot(t *testing.T) {
	body := `{"username":"victim","password":"guess","x":"&username=decoy&"}`
	var m struct {
		Username string `json:"username"`
	}
	_ = json.NewDecoder(strings.NewReader(body)).Decode(&m)
	check(t, "json polyglot sent as form", body, form, m.Username)
}

// Sound: escapes in JSON names and a BOM.
func TestAmbiguousBodiesJSONEscapedNamesAndBOM(t *testing.T) {
	f := loginname.Fields([]byte(`{"username":"decoy","user\u006eame":"victim"}`), js, loginname.Last, "username")
	if f["username"] != "victim" {
		t.Errorf("escaped duplicate: %q", f["username"])
	}
	f = loginname.Fields([]byte("\xef\xbb\xbf{\"username\":\"victim\"}"), js, loginname.Last, "username")
	if f["username"] != "" {
		t.Errorf("BOM: %q (refused is fine)", f["username"])
	}
}
