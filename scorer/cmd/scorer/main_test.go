package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkgw/bulwark/scorer/internal/crawlerdns/dnstest"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer collects the service's stdout.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines returns stdout's JSON lines.
func (b *syncBuffer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "stdout line is not JSON: %s", sc.Text())
		out = append(out, m)
	}
	return out
}

func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// start runs the service on a free port and returns its base URL and a stop
// function that cancels it and returns run's error.
func start(t *testing.T, env map[string]string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, envFunc(env), out) }()

	var addr string
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true // fail below
		default:
		}
		for line := range strings.Lines(out.String()) {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "scorer listening" {
				addr = l.Addr
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	require.NotEmpty(t, addr, "scorer did not start: %s", out.String())

	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + addr, out, stop
}

func TestRunServesAndStops(t *testing.T) {
	env := map[string]string{"BULWARK_LISTEN": "127.0.0.1:1"} // overridden by -listen
	dbPath := os.Getenv("BULWARK_TEST_GEOIP_DB")
	if dbPath != "" {
		env["BULWARK_GEOIP_DB"] = dbPath
	}
	base, out, stop := start(t, env)
	client := &http.Client{Timeout: 5 * time.Second}

	resp, err := client.Get(base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))

	resp, err = client.Post(base+"/v1/score", "application/json",
		strings.NewReader(`{"ip":"81.2.69.142","count_1s":120,"count_10s":120,"count_60s":120}`))
	require.NoError(t, err)
	var sr wire.ScoreResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sr))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 1.0, sr.Score)
	assert.Equal(t, "block", sr.Level)
	assert.Len(t, sr.Reasons, int(rules.NumFeatures))
	if dbPath != "" {
		require.NotNil(t, sr.Geo)
		assert.Equal(t, "GB", sr.Geo.Country)
		assert.Equal(t, "London", sr.Geo.City)
	}

	resp, err = client.Post(base+"/v1/score", "application/json", strings.NewReader(`{"ip":`))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.JSONEq(t, `{"error":"invalid JSON: body ends too early"}`, string(body))

	resp, err = client.Get(base + "/v1/profile")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `"thresholds":{"block":0.8,"throttle":0.5}`)

	require.NoError(t, stop())
	var msgs []string
	for _, l := range out.logLines(t) {
		msgs = append(msgs, l["msg"].(string))
	}
	assert.Equal(t, []string{"scorer listening", "request", "scorer shutting down", "scorer stopped"}, msgs,
		"only /v1/profile logs at info level")

	_, err = client.Get(base + "/healthz")
	assert.Error(t, err, "server is closed")
}

func TestRunWithProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profile.yaml")
	require.NoError(t, os.WriteFile(path, []byte("features:\n  geo:\n    country_risk: {GB: 1}\nthresholds: {block: 0.9}\n"), 0o600))
	base, _, stop := start(t, map[string]string{"BULWARK_CONFIG": path})

	resp, err := http.Get(base + "/v1/profile")
	require.NoError(t, err)
	var p map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	_ = resp.Body.Close()
	assert.Equal(t, map[string]any{"block": 0.9, "throttle": 0.5}, p["thresholds"])
	require.NoError(t, stop())
}

func TestRunBuiltinProfileAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profile.yaml")
	require.NoError(t, os.WriteFile(path, []byte("name: first\n"), 0o600))
	base, out, stop := start(t, map[string]string{"BULWARK_CONFIG": path})
	name := func() string {
		resp, err := http.Get(base + "/v1/profile")
		require.NoError(t, err)
		defer resp.Body.Close()
		var p struct{ Name string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
		return p.Name
	}
	require.Equal(t, "first", name())

	// An invalid file is refused and the active profile stays.
	require.NoError(t, os.WriteFile(path, []byte("combine: max\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "profile reload refused") }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, out.String(), "combine: must be")
	assert.Equal(t, "first", name())

	// A valid one replaces it without a restart.
	require.NoError(t, os.WriteFile(path, []byte("name: second\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return name() == "second" }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())

	base, _, stop = start(t, map[string]string{"BULWARK_PROFILE": "seed-002"})
	resp, err := http.Post(base+"/v1/score", "application/json", strings.NewReader(`{"ip":"10.0.0.1","visits":4,"sensitive":true}`))
	require.NoError(t, err)
	var sr wire.ScoreResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sr))
	_ = resp.Body.Close()
	assert.Equal(t, 0.7, sr.Score)
	assert.Equal(t, "seed-002", sr.Profile)
	require.NoError(t, stop())
}

// TestRunVerifiesCrawlersByDNS: the scorer asks BULWARK_DNS_SERVER and a
// crawler outside its allow rule's networks is allowed once its reverse DNS
// is confirmed.
func TestRunVerifiesCrawlersByDNS(t *testing.T) {
	dns := dnstest.Start(t)
	dns.PTR(t, "52.167.144.20", "msnbot-52-167-144-20.search.msn.com.")
	dns.Add(t, "msnbot-52-167-144-20.search.msn.com. 300 IN A 52.167.144.20")
	const bingbot = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
	score := func(base string) wire.ScoreResponse {
		resp, err := http.Post(base+"/v1/score", "application/json",
			strings.NewReader(`{"ip":"52.167.144.20","count_1s":3,"count_10s":20,"count_60s":120,"distinct_paths":120,"user_agent":"`+bingbot+`"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		var sr wire.ScoreResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&sr))
		return sr
	}

	base, _, stop := start(t, map[string]string{"BULWARK_DNS_SERVER": dns.Addr})
	first := score(base)
	assert.Empty(t, first.Allow, "not known yet: the networks decide")
	assert.Positive(t, first.Score)
	require.Eventually(t, func() bool { return score(base).AllowVia == "dns" }, 5*time.Second, 10*time.Millisecond)
	got := score(base)
	assert.Equal(t, "bingbot", got.Allow)
	assert.Zero(t, got.Score)
	assert.Equal(t, 1, dns.Count("PTR", "20.144.167.52.in-addr.arpa"))
	require.NoError(t, stop())

	// "off" verifies by the networks alone and asks no DNS server.
	base, out, stop := start(t, map[string]string{"BULWARK_DNS_SERVER": "off"})
	assert.Contains(t, out.String(), `"dns_server":"off"`)
	for range 3 {
		assert.Empty(t, score(base).Allow)
	}
	require.NoError(t, stop())
	assert.Equal(t, 2, dns.Total(), "only the first scorer's PTR and A queries")
}

func TestRunRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	badProfile := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(badProfile, []byte("features:\n  burst:\n    bogus: 1\n    weight: 3\n"), 0o600))
	garbage := filepath.Join(dir, "garbage.mmdb")
	require.NoError(t, os.WriteFile(garbage, []byte("nope"), 0o600))

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{
			name: "invalid profile",
			env:  map[string]string{"BULWARK_CONFIG": badProfile},
			want: []string{"BULWARK_CONFIG", "features.burst.bogus: unknown key", "features.burst.weight: must be between 0 and 1"},
		},
		{
			name: "missing profile",
			env:  map[string]string{"BULWARK_CONFIG": filepath.Join(dir, "missing.yaml")},
			want: []string{"BULWARK_CONFIG", "missing.yaml"},
		},
		{
			name: "missing geoip database",
			env:  map[string]string{"BULWARK_GEOIP_DB": filepath.Join(dir, "missing.mmdb")},
			want: []string{"BULWARK_GEOIP_DB", "missing.mmdb"},
		},
		{
			name: "unreadable geoip database",
			env:  map[string]string{"BULWARK_GEOIP_DB": garbage},
			want: []string{"BULWARK_GEOIP_DB", garbage},
		},
		{
			name: "unreadable asn database",
			env:  map[string]string{"BULWARK_GEOIP_ASN_DB": garbage},
			want: []string{"BULWARK_GEOIP_ASN_DB", garbage},
		},
		{
			name: "bad listen address",
			env:  map[string]string{"BULWARK_LISTEN": "127.0.0.1:99999"},
			want: []string{"BULWARK_LISTEN", "127.0.0.1:99999"},
		},
		{
			name: "unknown built-in profile",
			env:  map[string]string{"BULWARK_PROFILE": "seed-999"},
			want: []string{"BULWARK_PROFILE", `no built-in profile "seed-999"`},
		},
		{
			name: "bad log level",
			env:  map[string]string{"BULWARK_LOG_LEVEL": "loud"},
			want: []string{"BULWARK_LOG_LEVEL"},
		},
		{
			name: "flag overrides env",
			args: []string{"-config", badProfile},
			env:  map[string]string{"BULWARK_CONFIG": ""},
			want: []string{"features.burst.bogus"},
		},
		{
			name: "bad dns server",
			env:  map[string]string{"BULWARK_DNS_SERVER": "10.0.0.53"},
			want: []string{"BULWARK_DNS_SERVER", `want host:port, got "10.0.0.53"`},
		},
		{
			name: "bad dns timeout",
			env:  map[string]string{"BULWARK_DNS_TIMEOUT": "soon"},
			want: []string{"BULWARK_DNS_TIMEOUT", `"soon"`},
		},
		{
			name: "unknown flag",
			args: []string{"-bogus"},
			want: []string{"bogus"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out syncBuffer
			err := run(ctx, tt.args, envFunc(tt.env), &out)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, out.String(), "scorer listening")
		})
	}
}
