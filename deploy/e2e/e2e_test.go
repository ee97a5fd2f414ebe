// Package e2e runs the whole stack as real processes (shop, scorer, gateway,
// dashboard) against the test Redis and MongoDB wire server, and checks the
// path a request takes end to end: counted, scored, blocked and banned,
// recorded in MongoDB, and visible on the dashboard's live stream.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

func need(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with `make test`", name)
		}
		t.Skipf("%s is not set: run the tests with `make test`", name)
	}
	return v
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.work not found above the test")
		dir = parent
	}
}

// build compiles the service binaries once per test binary.
func build(t *testing.T, root, out string) map[string]string {
	bins := map[string]string{
		"shop": "./deploy/cmd/shop", "scorer": "./scorer/cmd/scorer",
		"gateway": "./gateway/cmd/gateway", "dashboard": "./dashboard/cmd/dashboard",
		"simulator": "./deploy/cmd/simulator",
	}
	paths := map[string]string{}
	args := []string{"build", "-o", out + "/"}
	for name, pkg := range bins {
		args = append(args, pkg)
		paths[name] = filepath.Join(out, filepath.Base(pkg))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	return paths
}

// clientFrom sends requests from one loopback address (Linux routes 127/8
// to lo), the way distinct clients would.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// freeAddr picks a free port for a service the test starts later. The port
// is closed before the service binds it, so it comes from below the
// kernel's ephemeral range (quietAddrs), where no outgoing connection of
// this busy machine can take it in between.
func freeAddr(t *testing.T) string { return quietAddrs(t, 1)[0] }

// quietAddrs returns n distinct free loopback addresses on ports between
// 20000 (above make detect's fixed ports) and the kernel's ephemeral range.
// A port from the ephemeral range can be taken by any outgoing connection
// (a simulator in a test running alongside, a load generator on the
// machine) between the check and the service's own bind; on a busy machine
// that range can even run out.
func quietAddrs(t *testing.T, n int) []string {
	ephemeral := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &ephemeral)
	}
	const lowest = 20000
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for try := 0; len(lns) < n && try < 1000 && ephemeral > lowest+1000; try++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lowest+rand.IntN(ephemeral-lowest)))
		if err == nil {
			lns = append(lns, ln)
		}
	}
	out := make([]string, 0, n)
	for _, ln := range lns {
		out = append(out, ln.Addr().String())
	}
	for len(out) < n { // no room below the ephemeral range
		out = append(out, anyAddr(t))
	}
	return out
}

// anyAddr is a port from the ephemeral range, for when there is no room
// below it.
func anyAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs a service until the test ends and waits for its /healthz; it
// returns the address the service listens on. With addr "" the service
// binds a port the kernel picks, and the address is read from its
// "listening" log line: nothing can take the port between a check and the
// bind. Either way the service must have logged that it listens on the
// address before its /healthz counts, so a port another test's process
// holds is never mistaken for this service.
func start(t *testing.T, name, bin, addr string, env ...string) string {
	out := &syncBuf{}
	listen := addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append(env, "BULWARK_LISTEN="+listen)...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	// done closes when the process has exited; waitErr is then its status.
	// Both the cleanup and the health loop may look, so it is a closed
	// channel rather than one value to receive.
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done: // it exited on its own; the health loop reported it
			if t.Failed() {
				t.Logf("%s exited early (%v); output:\n%s", name, waitErr, out)
			}
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			assert.NoError(t, waitErr, "%s did not stop cleanly:\n%s", name, out)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop within 15s", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	bound := ""
	for {
		select {
		case <-done:
			t.Fatalf("%s exited: %v\n%s", name, waitErr, out)
		default:
		}
		if bound == "" {
			bound = listeningAddr(out.String())
			if bound != "" && addr != "" && bound != addr {
				t.Fatalf("%s listens on %s, not on %s", name, bound, addr)
			}
		}
		if bound != "" {
			resp, err := http.Get("http://" + bound + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return bound
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy in 20s:\n%s", name, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listeningAddr is the address in a service's JSON "listening" log line
// ("listening", or "scorer listening"; never "admin listening"), or ""
// before it has logged one.
func listeningAddr(log string) string {
	for line := range strings.Lines(log) {
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && (l.Msg == "listening" || l.Msg == "scorer listening") && l.Addr != "" {
			return l.Addr
		}
	}
	return ""
}

// stack is the whole system running as processes on free ports.
type stack struct {
	gateway, dashboard string // host:port
	events             *mongo.Collection
}

// startStack builds and starts shop, scorer (with the demo GeoIP database
// when there is one), gateway and dashboard against the test Redis and
// MongoDB under a fresh namespace; extra variables go to the gateway and
// the dashboard.
func startStack(t *testing.T, gatewayEnv, dashboardEnv []string) stack {
	redisURL := need(t, "BULWARK_TEST_REDIS_URL")
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	root := repoRoot(t)
	bins := build(t, root, t.TempDir())

	ns := fmt.Sprintf("e2e%d", time.Now().UnixNano())
	shared := []string{
		"BULWARK_REDIS_URL=" + redisURL, "BULWARK_REDIS_PREFIX=" + ns + ":",
		"BULWARK_MONGO_URI=" + mongoURI, "BULWARK_MONGO_DB=" + ns,
	}
	shop := start(t, "shop", bins["shop"], "")
	var geo []string
	if db := os.Getenv("BULWARK_TEST_GEOIP_DB"); db != "" {
		geo = append(geo, "BULWARK_GEOIP_DB="+db)
	}
	scorer := start(t, "scorer", bins["scorer"], "", geo...)
	gw := start(t, "gateway", bins["gateway"], "", append(append(shared,
		"BULWARK_UPSTREAM_URL=http://"+shop, "BULWARK_SCORER_URL=http://"+scorer, "BULWARK_GATEWAY_ID=e2e-gw",
		// These tests check behaviour, not latency: a loaded test machine
		// must not turn a slow reply into a fail-open.
		"BULWARK_REDIS_TIMEOUT=3s", "BULWARK_SCORER_TIMEOUT=3s"), gatewayEnv...)...)
	dash := start(t, "dashboard", bins["dashboard"], "", append(shared, dashboardEnv...)...)

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = mc.Database(ns).Drop(ctx)
		_ = mc.Disconnect(ctx)
	})
	return stack{gateway: gw, dashboard: dash, events: mc.Database(ns).Collection("events")}
}

// liveFrames connects to the dashboard's live stream as a browser does and
// delivers its frames until the test ends (the channel closes with the
// connection).
func liveFrames(t *testing.T, dash string) <-chan wire.StatsFrame {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+dash+"/ws", nil)
	require.NoError(t, err)
	t.Cleanup(func() { ws.Close() })
	frames := make(chan wire.StatsFrame, 256)
	go func() {
		defer close(frames)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var f wire.StatsFrame
			if json.Unmarshal(msg, &f) == nil {
				frames <- f
			}
		}
	}()
	return frames
}

func TestStackBlocksABurstEndToEnd(t *testing.T) {
	st := startStack(t, nil, nil)
	gw, dash, events := st.gateway, st.dashboard, st.events

	// A browser on the dashboard.
	frames := liveFrames(t, dash)

	// 100 requests in one second from one client.
	client := &http.Client{Timeout: 5 * time.Second}
	codes := make([]int, 0, 100)
	firstBody := ""
	tick := time.NewTicker(10 * time.Millisecond)
	for range 100 {
		<-tick.C
		resp, err := client.Get("http://" + gw + "/api/products")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if firstBody == "" {
			firstBody = string(b)
		}
		codes = append(codes, resp.StatusCode)
	}
	tick.Stop()
	burstDone := time.Now()

	assert.Equal(t, 200, codes[0], "the first requests reach the shop")
	assert.Contains(t, firstBody, "Trail runner")
	assert.Equal(t, 403, codes[len(codes)-1], "later requests are blocked")
	firstBlock := -1
	for i, c := range codes {
		if c == 403 {
			firstBlock = i
			break
		}
	}
	require.Greater(t, firstBlock, 0, "codes: %v", codes)
	for _, c := range codes[firstBlock:] {
		assert.Equal(t, 403, c, "once banned, always refused: %v", codes)
	}
	t.Logf("first 403 at request %d of 100", firstBlock+1)

	// A spoofed X-Forwarded-For from the untrusted peer changes nothing: the
	// request is counted (and refused) under the peer's address.
	req, _ := http.NewRequest("GET", "http://"+gw+"/api/products", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 403, resp.StatusCode)

	// The dashboard shows blocks within 3 s.
	sawBlocked := false
	deadline := time.After(3 * time.Second)
wait:
	for {
		select {
		case f, ok := <-frames:
			require.True(t, ok, "websocket closed")
			if f.Totals.Blocked > 0 {
				sawBlocked = true
				break wait
			}
		case <-deadline:
			break wait
		}
	}
	assert.True(t, sawBlocked, "no frame with blocked > 0 within 3s of the burst (ended %s ago)", time.Since(burstDone))

	// The ban is in MongoDB with its score and reasons.
	var ev wire.Event
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := events.FindOne(ctx, bson.D{{Key: "type", Value: bson.D{{Key: "$in", Value: []string{"block", "ban"}}}}, {Key: "ip", Value: "127.0.0.1"}}).Decode(&ev)
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "no block/ban event in MongoDB")
	assert.GreaterOrEqual(t, ev.Score, 0.8)
	assert.NotEmpty(t, ev.Reasons)
	assert.Equal(t, "e2e-gw", ev.Gateway)
	assert.Equal(t, "/api/products", ev.Path)
	assert.False(t, strings.Contains(ev.IP, "203.0.113.77"))

	// The live feed also carried it, and the history API serves it.
	resp, err = http.Get("http://" + dash + "/api/events?type=ban&limit=5")
	require.NoError(t, err)
	var hist struct {
		Events []wire.Event `json:"events"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&hist))
	resp.Body.Close()
	require.NotEmpty(t, hist.Events)
	assert.Equal(t, "127.0.0.1", hist.Events[0].IP)
}
