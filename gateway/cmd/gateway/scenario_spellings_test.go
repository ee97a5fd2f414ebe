package main

// Issue 19, item 4: spellings of a login path and of a login name that a
// lenient upstream reads as the guarded login must land on the guarded
// login's counters.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

const spellingsConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
login_protection:
  routes: [{path: /api/login}]
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
  failures: 3
  failure_window: 60s
  block: 60s
`

// lenientLogin is an upstream as lenient as IIS, Rails, Spring and Django
// together: /API/Login, /api/login., /api/login%20, /api/login.json and
// /api/login;x=1 are its login; the last of a duplicated field wins; a
// username is NFKC-normalised and case-insensitive. Only "victim*" with
// password "right" logs in.
func lenientLogin(u *upstream) {
	u.handle(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		p, _, _ := strings.Cut(strings.ToLower(r.URL.Path), ";")
		p = strings.TrimRight(p, "/. ")
		p = strings.TrimRight(strings.TrimSuffix(p, ".json"), ". ")
		if p != "/api/login" {
			return false
		}
		var user, pw string
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			vals, _ := url.ParseQuery(string(body))
			if v := vals["username"]; len(v) > 0 {
				user = v[len(v)-1]
			}
			pw = vals.Get("password")
		} else {
			var m map[string]string
			_ = json.Unmarshal(body, &m)
			user, pw = m["username"], m["password"]
		}
		user = strings.ToLower(norm.NFKC.String(strings.TrimSpace(user)))
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(user, "victim") && pw == "right" {
			_, _ = w.Write([]byte(`{"ok":true}`))
			return true
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"ok":false}`))
		return true
	})
}

// spelling is one login attempt as a client spells it.
type spelling struct{ path, contentType, body string }

// stuff sends twelve attempts, one per address of 127.0.net.x (credential
// stuffing: one guess per address), and returns each answer's status and
// how many of them reached the upstream.
func (s *stack) stuff(net int, attempt func(i int) spelling) (codes []int, reached int) {
	posts := func() int {
		n := 0
		for _, r := range s.u1.requests() {
			if r.Method == http.MethodPost {
				n++
			}
		}
		return n
	}
	before := posts()
	for i := range 12 {
		a := attempt(i)
		r := s.from(fmt.Sprintf("127.0.%d.%d", net, 10+i)).do("POST", a.path, strings.NewReader(a.body), "Content-Type", a.contentType)
		codes = append(codes, r.Code)
	}
	return codes, posts() - before
}

func TestLoginSpellingsLandOnOneCounter(t *testing.T) {
	t.Parallel()
	s := startStack(t, spellingsConfig)
	lenientLogin(s.u1)
	cases := []struct {
		name     string
		victim   string
		attempts func(i int) spelling
	}{
		{"path spellings", "victim1", func(i int) spelling {
			paths := []string{"/api/login.json", "/api/login%20", "/api/login.", "/api/login%2e", "/API/Login", "/api/login;jsessionid=1", "/api/LOGIN.Json.", "/api//login/"}
			return spelling{paths[i%len(paths)], "application/json", `{"username":"victim1","password":"guess` + fmt.Sprint(i) + `"}`}
		}},
		{"NFKC and case spellings of the username", "victim2", func(i int) spelling {
			names := []string{"ｖｉｃｔｉｍ２", "VICTIM2", " Victim2", "ＶＩＣＴＩＭ2"}
			return spelling{"/api/login", "application/x-www-form-urlencoded", "username=" + url.QueryEscape(names[i%len(names)]) + "&password=guess" + fmt.Sprint(i)}
		}},
		{"a decoy before the login the upstream reads", "victim3", func(i int) spelling {
			return spelling{"/api/login", "application/x-www-form-urlencoded", fmt.Sprintf("username=decoy%d&username=victim3&password=guess%d", i, i)}
		}},
		{"a decoy before the login, in JSON", "victim4", func(i int) spelling {
			return spelling{"/api/login", "application/json", fmt.Sprintf(`{"username":"decoy%d","username":"victim4","password":"guess%d"}`, i, i)}
		}},
	}
	for n, c := range cases {
		codes, reached := s.stuff(40+n, c.attempts)
		for i, code := range codes {
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}, code, "%s: %+v", c.name, c.attempts(i))
		}
		assert.Equal(t, 3, reached, "%s: the upstream saw only the failures before the lock", c.name)
		// The victim's login is locked under its plain spelling too.
		r := s.from(fmt.Sprintf("127.0.%d.200", 40+n)).postJSON("/api/login", `{"username":"`+c.victim+`","password":"right"}`)
		assert.Equal(t, http.StatusForbidden, r.Code, "%s: the victim's login is locked: %s", c.name, r.Body)
	}
}

// Bodies and paths a review found past the first fix: padding past the
// reader's field limit, and a format suffix hidden behind a segment the key
// drops. The padded bodies name no login now (400); the paths share the
// login's key.
func TestPaddedBodiesAndHiddenSuffixesDoNotEscapeTheLock(t *testing.T) {
	t.Parallel()
	s := startStack(t, spellingsConfig)
	lenientLogin(s.u1)
	cases := []struct {
		name     string
		attempts func(i int) spelling
	}{
		{"form padded past loginname.MaxFields with empty pairs", func(i int) spelling {
			return spelling{"/api/login", "application/x-www-form-urlencoded",
				fmt.Sprintf("username=decoy%d%s&username=victim5&password=guess%d", i, strings.Repeat("&", 256), i)}
		}},
		{"json padded past loginname.MaxFields", func(i int) spelling {
			return spelling{"/api/login", "application/json",
				fmt.Sprintf(`{"username":"decoy%d"%s,"username":"victim6","password":"guess%d"}`, i, strings.Repeat(`,"a":""`, 256), i)}
		}},
		{"suffix hidden by a trailing segment the key drops", func(i int) spelling {
			paths := []string{"/api/login.json/%20", "/api/login.json/;x", "/api/login.json/;"}
			return spelling{paths[i%len(paths)], "application/json", fmt.Sprintf(`{"username":"victim7","password":"guess%d"}`, i)}
		}},
	}
	for n, c := range cases {
		_, reached := s.stuff(60+n, c.attempts)
		assert.LessOrEqual(t, reached, 3, "%s: the upstream saw %d guesses on the victim (3 allowed before the lock)", c.name, reached)
	}
}
