package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

// upstream is a recording backend (the scenarios' U1, U2, U3).
type upstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []recorded
	handler func(w http.ResponseWriter, r *http.Request, body []byte) bool // true: handled
}

type recorded struct {
	Method, URI, Host, ContentType, XFF string
	Body                                []byte
	Header                              http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, recorded{r.Method, r.RequestURI, r.Host, r.Header.Get("Content-Type"), r.Header.Get("X-Forwarded-For"), body, r.Header.Clone()})
		h := u.handler
		u.mu.Unlock()
		if h != nil && h(w, r, body) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) URL() string { return u.srv.URL }

func (u *upstream) handle(h func(w http.ResponseWriter, r *http.Request, body []byte) bool) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.got...)
}

func (u *upstream) count(pathPrefix string) int {
	n := 0
	for _, r := range u.requests() {
		if strings.HasPrefix(r.URI, pathPrefix) {
			n++
		}
	}
	return n
}

// stack is one gateway started through run() on real listeners, with
// recording upstreams, the test Redis and the test MongoDB.
type stack struct {
	t          *testing.T
	gw, admin  string
	cfgPath    string
	u1, u2, u3 *upstream
	rdb        redis.UniversalClient
	prefix     string
	out        *syncBuffer
	env        map[string]string
	stop       func() error // cancels run's context and waits for it to return; once
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startStack writes the config (text with {{U1}}, {{U2}}, {{U3}} replaced by
// the upstreams' URLs) and runs the gateway until the test ends.
func startStack(t *testing.T, cfg string, env ...string) *stack {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	mongoURI := testenv.MongoURI(t)
	s := &stack{t: t, u1: newUpstream(t), u2: newUpstream(t), u3: newUpstream(t), rdb: rdb, prefix: prefix, out: &syncBuffer{}}
	s.gw, s.admin = freePort(t), freePort(t)
	s.cfgPath = filepath.Join(t.TempDir(), "gateway.yaml")
	s.write(cfg)
	s.env = map[string]string{
		"BULWARK_REDIS_URL": testenv.RedisURL(t), "BULWARK_REDIS_PREFIX": prefix,
		"BULWARK_MONGO_URI": mongoURI, "BULWARK_MONGO_DB": testenv.Namespace(t),
		"BULWARK_LISTEN": s.gw, "BULWARK_ADMIN_LISTEN": s.admin, "BULWARK_GATEWAY_ID": "scenario",
		// The scenarios test behaviour, not latency: a loaded test machine
		// must not turn a slow Redis reply into a fail-open.
		"BULWARK_REDIS_TIMEOUT": "3s",
	}
	for i := 0; i+1 < len(env); i += 2 {
		s.env[env[i]] = env[i+1]
	}
	s.gw = s.env["BULWARK_LISTEN"] // a test may listen elsewhere, e.g. on [::1]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gateway", "-config", s.cfgPath}, func(k string) string { return s.env[k] }, s.out)
	}()
	s.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("gateway did not stop in 15s")
		}
	})
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("gateway stopped with %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", tail(s.out.String(), 40))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + s.gw + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("gateway exited: %v\n%s", err, s.out.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "gateway not up:\n%s", s.out.String())
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *stack) write(cfg string) {
	cfg = strings.NewReplacer("{{U1}}", s.u1.URL(), "{{U2}}", s.u2.URL(), "{{U3}}", s.u3.URL()).Replace(cfg)
	require.NoError(s.t, os.WriteFile(s.cfgPath, []byte(cfg), 0o600))
}

// client sends requests from one loopback address (Linux routes 127/8 to lo).
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	ip   string
}

func (s *stack) from(ip string) *client      { return s.clientFor("http://"+s.gw, ip) }
func (s *stack) adminFrom(ip string) *client { return s.clientFor("http://"+s.admin, ip) }

func (s *stack) clientFor(base, ip string) *client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &client{t: s.t, base: base, ip: ip, hc: &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type reply struct {
	Code   int
	Header http.Header
	Body   string
}

func (r reply) json(t *testing.T) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &m), "body: %s", r.Body)
	return m
}

// do sends one request; hdr is a list of header name, value pairs.
func (c *client) do(method, path string, body io.Reader, hdr ...string) reply {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(c.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (c *client) get(path string, hdr ...string) reply { return c.do("GET", path, nil, hdr...) }

func (c *client) postJSON(path, body string, hdr ...string) reply {
	return c.do("POST", path, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
