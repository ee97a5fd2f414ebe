package apikey_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
)

func TestKeyFromAndStrip(t *testing.T) {
	t.Parallel()
	k64 := strings.Repeat("ab", 32)
	tests := []struct {
		name      string
		target    string
		hdr       map[string]string
		wantKey   string
		wantWhere string
		wantQuery string            // RawQuery after Strip
		wantHdr   map[string]string // headers after Strip ("" = absent)
	}{
		{name: "S03 repeated parameters keep their order", target: "/app/hello?KEY=k&a=1&a=2",
			wantKey: "k", wantWhere: apikey.FromQuery, wantQuery: "a=1&a=2"},
		{name: "KEY in the middle", target: "/app/hello?a=1&KEY=k&b=2",
			wantKey: "k", wantWhere: apikey.FromQuery, wantQuery: "a=1&b=2"},
		{name: "KEY last", target: "/x?a=1&KEY=k",
			wantKey: "k", wantWhere: apikey.FromQuery, wantQuery: "a=1"},
		{name: "KEY only", target: "/app/hello?KEY=k",
			wantKey: "k", wantWhere: apikey.FromQuery, wantQuery: ""},
		{name: "lower-case key is an ordinary parameter", target: "/x?key=k&KEY=K",
			wantKey: "K", wantWhere: apikey.FromQuery, wantQuery: "key=k"},
		{name: "only lower-case key", target: "/x?key=k",
			wantKey: "", wantWhere: "", wantQuery: "key=k"},
		{name: "other bytes are kept exactly", target: "/x?b=%2f%2F&KEY=k&c=a+b&d&&e=",
			wantKey: "k", wantWhere: apikey.FromQuery, wantQuery: "b=%2f%2F&c=a+b&d&&e="},
		{name: "percent-encoded name is still KEY", target: "/x?%4BEY=k&a=1",
			wantKey: "k", wantWhere: apikey.FromQuery, wantQuery: "a=1"},
		{name: "value is decoded", target: "/x?KEY=a%2Bb",
			wantKey: "a+b", wantWhere: apikey.FromQuery, wantQuery: ""},
		{name: "every KEY is removed, the first non-empty wins", target: "/x?KEY=&a=1&KEY=k1&KEY=k2",
			wantKey: "k1", wantWhere: apikey.FromQuery, wantQuery: "a=1"},
		{name: "empty KEY falls through to the header", target: "/x?KEY=", hdr: map[string]string{"X-API-Key": "h"},
			wantKey: "h", wantWhere: apikey.FromHeader, wantQuery: "", wantHdr: map[string]string{"X-API-Key": ""}},
		{name: "S03 X-API-Key header", target: "/app/hello?a=1", hdr: map[string]string{"X-API-Key": " h "},
			wantKey: "h", wantWhere: apikey.FromHeader, wantQuery: "a=1", wantHdr: map[string]string{"X-API-Key": ""}},
		{name: "Bearer", target: "/x", hdr: map[string]string{"Authorization": "Bearer " + k64},
			wantKey: k64, wantWhere: apikey.FromBearer, wantHdr: map[string]string{"Authorization": ""}},
		{name: "bearer scheme is case-insensitive", target: "/x", hdr: map[string]string{"Authorization": "bearer  " + k64 + " "},
			wantKey: k64, wantWhere: apikey.FromBearer, wantHdr: map[string]string{"Authorization": ""}},
		{name: "a bearer token that is not key-shaped is the upstream's and stays", target: "/x?KEY=q",
			hdr:     map[string]string{"Authorization": "Bearer eyJhbGciOi.jwt.sig"},
			wantKey: "q", wantWhere: apikey.FromQuery, wantQuery: "",
			wantHdr: map[string]string{"Authorization": "Bearer eyJhbGciOi.jwt.sig"}},
		{name: "Basic is for the upstream and stays", target: "/x", hdr: map[string]string{"Authorization": "Basic dTpw"},
			wantKey: "", wantWhere: "", wantHdr: map[string]string{"Authorization": "Basic dTpw"}},
		{name: "query beats headers, and all are stripped", target: "/x?KEY=q",
			hdr:     map[string]string{"X-API-Key": "h", "Authorization": "Bearer " + k64, "Cookie": "c=1"},
			wantKey: "q", wantWhere: apikey.FromQuery, wantQuery: "",
			wantHdr: map[string]string{"X-API-Key": "", "Authorization": "", "Cookie": "c=1"}},
		{name: "header beats bearer", target: "/x",
			hdr:     map[string]string{"X-API-Key": "h", "Authorization": "Bearer " + k64},
			wantKey: "h", wantWhere: apikey.FromHeader,
			wantHdr: map[string]string{"X-API-Key": "", "Authorization": ""}},
		{name: "none", target: "/x?a=1", wantKey: "", wantWhere: "", wantQuery: "a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			key, where := apikey.KeyFrom(r)
			assert.Equal(t, tt.wantKey, key)
			assert.Equal(t, tt.wantWhere, where)

			path := r.URL.Path
			apikey.Strip(r)
			assert.Equal(t, tt.wantQuery, r.URL.RawQuery)
			assert.Equal(t, path, r.URL.Path)
			for k, v := range tt.wantHdr {
				assert.Equal(t, v, r.Header.Get(k), k)
			}
			wantURI := path
			if tt.wantQuery != "" {
				wantURI += "?" + tt.wantQuery
			}
			if strings.Contains(tt.target, "KEY") {
				assert.Equal(t, wantURI, r.RequestURI, "RequestURI no longer shows the key")
				assert.Equal(t, wantURI, r.URL.String())
			}
			k, w := apikey.KeyFrom(r)
			assert.Empty(t, k, "nothing left to find after Strip")
			assert.Empty(t, w)
		})
	}
}

func TestStripLeavesQueryWithoutKeyUntouched(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/x?b=2&a=1&a=0", nil)
	apikey.Strip(r)
	assert.Equal(t, "b=2&a=1&a=0", r.URL.RawQuery)
	assert.Equal(t, "/x?b=2&a=1&a=0", r.RequestURI)
}

func TestTruthy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string // the upstream's JSON answer
		want bool
	}{
		{`{"success":true}`, true},
		{`{"success":"ok"}`, true}, // S01
		{`{"success":"true"}`, true},
		{`{"success":"yes"}`, true},
		{`{"success":1}`, true},
		{`{"success":-2.5}`, true},
		{`{"success":false}`, false}, // S02
		{`{"success":""}`, false},    // S02
		{`{"success":null}`, false},  // S02
		{`{"error":"bad"}`, false},   // S02: missing
		{`{"success":"false"}`, false},
		{`{"success":"FALSE"}`, false},
		{`{"success":" False "}`, false},
		{`{"success":"0"}`, false},
		{`{"success":"no"}`, false},
		{`{"success":"off"}`, false},
		{`{"success":"null"}`, false},
		{`{"success":0}`, false},
		{`{"success":0.0}`, false},
		{`{"success":{}}`, false},
		{`{"success":{"a":1}}`, false},
		{`{"success":[]}`, false},
		{`{"success":[true]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.body), &m))
			assert.Equal(t, tt.want, apikey.Truthy(m["success"]))

			dec := json.NewDecoder(strings.NewReader(tt.body))
			dec.UseNumber()
			var n map[string]any
			require.NoError(t, dec.Decode(&n))
			assert.Equal(t, tt.want, apikey.Truthy(n["success"]), "with json.Number")
		})
	}
	assert.False(t, apikey.Truthy(nil))
	assert.True(t, apikey.Truthy(1))
	assert.False(t, apikey.Truthy(int64(0)))
}

func BenchmarkKeyFrom(b *testing.B) {
	cases := []struct {
		name string
		req  *http.Request
	}{
		{"query", httptest.NewRequest(http.MethodGet, "/app/hello?a=1&b=2&KEY="+strings.Repeat("ab", 32)+"&c=3", nil)},
		{"header", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/app/hello?a=1&b=2&c=3", nil)
			r.Header.Set("X-API-Key", strings.Repeat("ab", 32))
			return r
		}()},
		{"bearer", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/app/hello", nil)
			r.Header.Set("Authorization", "Bearer "+strings.Repeat("ab", 32))
			return r
		}()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if k, _ := apikey.KeyFrom(c.req); k == "" {
					b.Fatal("no key")
				}
			}
		})
	}
}
