package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// TestSoakMongoOutage is issue 12 item 10 proved from outside: the real
// gateway binary, with an event spool and the default queue, takes
// SOAK_RATE security events a second (default 300) while MongoDB is cut
// for SOAK_OUTAGE (default 180s), and every event lands in MongoDB exactly
// once. MongoDB (the dev stack's FerretDB) is reached through a TCP proxy
// the test owns: at the outage it closes every connection, refuses new
// ones for the first half (the listener is closed) and accepts and holds
// them for the second (a black hole: no byte goes through, no answer
// comes back), then forwards again.
//
// Each request comes from a distinct address (X-Forwarded-For from the
// trusted 127.0.0.1) inside a deny-listed CIDR: one deny_list event each,
// never folded by the aggregator (its key is the client), and no Redis or
// scorer work in between. Load runs open-loop at a fixed rate: 10 s
// warm-up, the outage, 60 s after MongoDB returns; then the test waits
// until the gateway's written counter stops growing and compares the
// requests the gateway refused with the events stored.
//
// It takes minutes, so `make test` skips it; `make soak` runs it.
func TestSoakMongoOutage(t *testing.T) {
	if os.Getenv("BULWARK_SOAK") != "1" {
		t.Skip("the MongoDB outage soak runs for minutes: `make soak` runs it (BULWARK_SOAK=1, SOAK_OUTAGE, SOAK_RATE)")
	}
	outage := soakDuration(t, "SOAK_OUTAGE", 180*time.Second)
	rate := soakRate(t, "SOAK_RATE", 300)
	const warmup, after = 10 * time.Second, 60 * time.Second
	redisURL := need(t, "BULWARK_TEST_REDIS_URL")
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	logDir := os.Getenv("SOAK_LOG_DIR")
	if logDir == "" {
		logDir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(logDir, 0o755))

	// MongoDB, as the gateway sees it: through the proxy.
	mu, err := url.Parse(mongoURI)
	require.NoError(t, err)
	require.NotContains(t, mu.Host, ",", "the soak test proxies one MongoDB host, not %s", mu.Host)
	px := startFaultProxy(t, mu.Host)
	viaProxy := *mu
	viaProxy.Host = px.addr

	ns := fmt.Sprintf("soak%d", time.Now().UnixNano())
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = mc.Database(ns).Drop(ctx)
		_ = mc.Disconnect(ctx)
	})
	coll := mc.Database(ns).Collection("events")

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK) // never reached: every client is deny-listed
	}))
	t.Cleanup(upstream.Close)
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	cfg := filepath.Join(dir, "gateway.yaml")
	// Everything else is the gateway's default, the event pipeline's
	// queue_size (10,000) and 1 s aggregation window included.
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
gateway_id: soak-gw
scorer: {enabled: false}
lists: {deny: [10.0.0.0/8]}
events: {spool_dir: %q}
`, spoolDir)), 0o600))
	gwAddr, adminAddr := freeAddr(t), freeAddr(t)
	const token = "soak-admin-token-0123456789abcdef"
	gwLog := filepath.Join(logDir, "gateway.log")
	startSoakGateway(t, gwLog, gwAddr,
		"BULWARK_CONFIG="+cfg,
		"BULWARK_UPSTREAM_URL="+upstream.URL,
		"BULWARK_TRUSTED_PROXIES=127.0.0.1/32",
		"BULWARK_REDIS_URL="+redisURL, "BULWARK_REDIS_PREFIX="+ns+":",
		"BULWARK_MONGO_URI="+viaProxy.String(), "BULWARK_MONGO_DB="+ns,
		"BULWARK_ADMIN_LISTEN="+adminAddr, "BULWARK_ADMIN_TOKEN="+token,
		"BULWARK_SCORER_URL=http://"+freeAddr(t), // scoring is off
	)
	metrics := func() soakMetrics {
		m, err := scrapeSoakMetrics(adminAddr, token)
		require.NoError(t, err)
		return m
	}

	// The run: load throughout; the proxy cuts MongoDB in the middle.
	gen := newSoakLoad("http://" + gwAddr + "/soak")
	mon := &soakMonitor{admin: adminAddr, token: token, spoolDir: spoolDir}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	monCtx, stopMon := context.WithCancel(context.Background())
	defer stopMon()
	var loading, monitoring sync.WaitGroup
	loading.Go(func() { gen.run(loadCtx, rate) })
	monitoring.Go(func() { mon.run(monCtx) })

	t.Logf("soak: %d events/s, warm-up %s, MongoDB outage %s (refused %s, black-holed %s), %s after; gateway log %s",
		rate, warmup, outage, outage/2, outage-outage/2, after, gwLog)
	time.Sleep(warmup)
	before := metrics()
	require.Positive(t, before.written, "no event reached MongoDB before the outage")
	// In whole milliseconds, as MongoDB keeps the events' times.
	outageAt := time.Now().Truncate(time.Millisecond)
	px.refuse()
	time.Sleep(outage / 2)
	px.blackhole()
	time.Sleep(outage - outage/2)
	atOutageEnd := metrics()
	restoredAt := time.Now().Truncate(time.Millisecond)
	mon.restored(restoredAt)
	px.restore()
	time.Sleep(after)
	stopLoad()
	loadEnd := time.Now()
	loading.Wait() // the generator has every answer

	// Drain: until the written counter holds still for 10 s.
	drainDeadline := time.Now().Add(max(2*time.Minute, outage))
	final := metrics()
	lastChange := time.Now()
	for time.Since(lastChange) < 10*time.Second && time.Now().Before(drainDeadline) {
		time.Sleep(time.Second)
		if m := metrics(); m.written != final.written {
			final, lastChange = m, time.Now()
		}
	}
	final = metrics()
	stopMon()
	monitoring.Wait()

	// What the generator saw and what MongoDB holds.
	res := gen.results()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "request_id", Value: 1}, {Key: "type", Value: 1}, {Key: "ts", Value: 1}}))
	require.NoError(t, err)
	var docs []struct {
		ID        string    `bson:"_id"`
		RequestID string    `bson:"request_id"`
		Type      string    `bson:"type"`
		TS        time.Time `bson:"ts"`
	}
	require.NoError(t, cur.All(ctx, &docs))
	ids, byRequest := map[string]int{}, map[string]int{}
	var wrongType, outageEvents int
	for _, d := range docs {
		ids[d.ID]++
		byRequest[d.RequestID]++
		if d.Type != "deny_list" {
			wrongType++
		}
		if d.TS.Before(restoredAt) && !d.TS.Before(outageAt) {
			outageEvents++
		}
	}
	var dupIDs, dupRequests, missing, unknown []string
	for id, n := range ids {
		if n > 1 {
			dupIDs = append(dupIDs, id)
		}
	}
	for id, n := range byRequest {
		if n > 1 {
			dupRequests = append(dupRequests, id)
		}
		if _, sent := res.status[id]; !sent {
			unknown = append(unknown, id)
		}
	}
	for id, status := range res.status {
		if status == http.StatusForbidden && byRequest[id] == 0 {
			missing = append(missing, id)
		}
	}
	spoolLeft, _ := filepath.Glob(filepath.Join(spoolDir, "*.jsonl"))

	summary := fmt.Sprintf("soak: MongoDB down %s (refused %s, black-holed %s) at %.0f events/s: sent %d, refused %d, published %d, stored %d (%d during the outage), dropped %d, spooled %d, written %d, stream dropped %d, client errors %d, other answers %d, max backlog %d, max spool %.1f MiB, max replay lag %s (the spool last held events that long after MongoDB returned), drained %s after the load stopped",
		outage, outage/2, outage-outage/2, float64(res.sent)/loadEnd.Sub(gen.started()).Seconds(),
		res.sent, res.refused, final.published, len(docs), outageEvents, final.dropped, final.spooled, final.written, final.streamDropped,
		res.errors, res.other, mon.backlog, float64(mon.spoolBytes)/(1<<20), mon.replayLag().Round(time.Second), max(0, lastChange.Sub(loadEnd)).Round(time.Second))
	t.Log(summary)
	if p := os.Getenv("SOAK_SUMMARY"); p != "" {
		_ = os.WriteFile(p, []byte(summary+"\n"), 0o644)
	}

	// The outage really was one: events waited on disk.
	assert.Positive(t, atOutageEnd.spooled-before.spooled, "no event was spooled during the outage: was MongoDB cut?")
	assert.Positive(t, outageEvents, "no stored event from the outage")
	// Nothing lost, nothing twice.
	assert.Zero(t, final.dropped, "bulwark_gateway_events_dropped_total")
	assert.Empty(t, missing, "requests refused (403) whose deny_list event is not in MongoDB (%d)", len(missing))
	assert.Empty(t, dupIDs, "event ids stored more than once")
	assert.Empty(t, dupRequests, "requests with more than one stored event")
	assert.Empty(t, unknown, "stored events for requests the generator did not send")
	assert.Zero(t, wrongType, "stored events of another type than deny_list")
	assert.Equal(t, final.published, int64(len(docs)), "deny-listed requests counted by the gateway vs events stored")
	assert.Equal(t, res.refused, int64(len(docs)), "403 answers vs events stored")
	// A batch that landed but whose answer was lost (the proxy cut it) is
	// written again, which the unique _id makes a no-op: the counter may
	// count it twice, never less.
	assert.GreaterOrEqual(t, final.written, int64(len(docs)), "bulwark_gateway_events_written_total")
	assert.Empty(t, spoolLeft, "spool segments left after the drain")
	// The gateway kept answering throughout: a refusal costs no MongoDB.
	assert.Zero(t, res.errors, "requests that got no answer")
	assert.Zero(t, res.other, "answers other than 403")
}

func soakDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "%s", name)
	require.GreaterOrEqual(t, d, 2*time.Second, "%s", name)
	return d
}

func soakRate(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s", name)
	require.Positive(t, n, "%s", name)
	return n
}

// startSoakGateway builds and runs the gateway until the test ends, its
// output in logPath (an access-log line per request is too much to keep in
// memory), and waits for its /healthz.
func startSoakGateway(t *testing.T, logPath, addr string, env ...string) {
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, "./gateway/cmd/gateway")
	build.Dir = repoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append(env, "BULWARK_LISTEN="+addr)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); logf.Close(); close(done) }()
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		return lastLines(string(b), 30)
	}
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			assert.NoError(t, waitErr, "the gateway did not stop cleanly:\n%s", tail())
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the gateway did not stop within 30s:\n%s", tail())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("the gateway exited: %v\n%s", waitErr, tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway is not healthy in 30s:\n%s", tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// soakMetrics is what the test reads from the gateway's /metrics.
type soakMetrics struct {
	published     int64 // deny-listed requests: one event each
	written       int64
	dropped       int64
	spooled       int64
	folded        int64
	streamDropped int64
}

func scrapeSoakMetrics(admin, token string) (soakMetrics, error) {
	var m soakMetrics
	req, err := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return m, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		name, val := line[:i], line[i+1:]
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		n := int64(f)
		switch {
		case strings.HasPrefix(name, "bulwark_gateway_requests_total{") && strings.Contains(name, `decision="deny_listed"`):
			m.published += n
		case name == "bulwark_gateway_events_written_total":
			m.written = n
		case name == "bulwark_gateway_events_dropped_total":
			m.dropped = n
		case name == "bulwark_gateway_events_spooled_total":
			m.spooled = n
		case name == "bulwark_gateway_events_folded_total":
			m.folded = n
		case name == "bulwark_gateway_events_stream_dropped_total":
			m.streamDropped = n
		}
	}
	return m, sc.Err()
}

// soakMonitor watches the run from outside: the gateway's counters every
// second (the backlog: events published and not yet written), and its
// spool directory four times a second (how much waits on disk, and when it
// last held anything after MongoDB returned).
type soakMonitor struct {
	admin, token, spoolDir string

	mu         sync.Mutex
	restoreAt  time.Time // zero until MongoDB is back
	backlog    int64     // the largest published − written seen
	spoolBytes int64     // the most bytes seen in the spool
	spoolLast  time.Time // the last time the spool held a segment after restoreAt
}

func (m *soakMonitor) restored(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restoreAt = at
}

func (m *soakMonitor) run(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var size int64
		var segments int
		entries, _ := os.ReadDir(m.spoolDir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".jsonl") {
				size += info.Size()
				segments++
			}
		}
		now := time.Now()
		m.mu.Lock()
		m.spoolBytes = max(m.spoolBytes, size)
		if segments > 0 && !m.restoreAt.IsZero() {
			m.spoolLast = now
		}
		m.mu.Unlock()
		if i%4 != 0 {
			continue
		}
		if s, err := scrapeSoakMetrics(m.admin, m.token); err == nil {
			m.mu.Lock()
			m.backlog = max(m.backlog, s.published-s.written)
			m.mu.Unlock()
		}
	}
}

// replayLag is how long after MongoDB returned the spool last held
// anything: the longest an event waited on disk once MongoDB could take it.
func (m *soakMonitor) replayLag() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(0, m.spoolLast.Sub(m.restoreAt))
}

// soakLoad sends requests at a fixed rate whatever the answers take
// (open loop), each from its own deny-listed address with its own request
// id, and keeps every answer.
type soakLoad struct {
	url    string
	client *http.Client
	next   atomic.Int64
	start  atomic.Int64 // unix nanoseconds

	mu     sync.Mutex
	status map[string]int // request id → status, or -1: no answer
}

type soakResults struct {
	status                       map[string]int
	sent, refused, errors, other int64
}

func newSoakLoad(u string) *soakLoad {
	return &soakLoad{
		url: u, status: map[string]int{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute,
		}},
	}
}

func (l *soakLoad) started() time.Time { return time.Unix(0, l.start.Load()) }

func (l *soakLoad) run(ctx context.Context, rate int) {
	start := time.Now()
	l.start.Store(start.UnixNano())
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(rate))
			for ; sent < due; sent++ {
				n := l.next.Add(1)
				wg.Go(func() { l.send(n) })
			}
		}
	}
}

func (l *soakLoad) send(n int64) {
	id := fmt.Sprintf("soak-%d", n)
	req, _ := http.NewRequest(http.MethodGet, l.url, nil)
	req.Header.Set("X-Request-ID", id)
	// 10.0.0.1 upwards: a new client every request.
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", byte(n>>16), byte(n>>8), byte(n)))
	status := -1
	resp, err := l.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	l.mu.Lock()
	l.status[id] = status
	l.mu.Unlock()
}

func (l *soakLoad) results() soakResults {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := soakResults{status: l.status}
	for _, s := range l.status {
		r.sent++
		switch s {
		case http.StatusForbidden:
			r.refused++
		case -1:
			r.errors++
		default:
			r.other++
		}
	}
	return r
}

// faultProxy forwards TCP connections to target until told to cut it:
// refuse closes the listener and every connection (connects are refused),
// blackhole listens again but holds what it accepts without a byte either
// way, restore forwards again (dropping the held connections).
type faultProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	mode  string // "forward", "refuse", "blackhole"
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	p := &faultProxy{t: t, target: target, addr: freeAddr(t), mode: "forward", conns: map[net.Conn]struct{}{}}
	p.listen()
	t.Cleanup(func() {
		p.mu.Lock()
		p.mode = "closed"
		if p.ln != nil {
			p.ln.Close()
		}
		p.closeConns()
		p.mu.Unlock()
		p.wg.Wait()
	})
	// The test's own reads of MongoDB go direct; this checks the path.
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + p.addr + "/"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx, readpref.Primary()), "MongoDB through the proxy")
	_ = c.Disconnect(ctx)
	return p
}

// listen (re)binds the proxy's address; p.mu is not held.
func (p *faultProxy) listen() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a close
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(p.t, err, "the MongoDB proxy cannot listen on %s again", p.addr)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() { p.accept(ln) })
}

func (p *faultProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		mode := p.mode
		if mode == "forward" || mode == "blackhole" {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		switch mode {
		case "forward":
			p.wg.Go(func() { p.forward(c) })
		case "blackhole":
			// held: nothing is read or written until restore closes it
		default:
			c.Close()
		}
	}
}

func (p *faultProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	p.mu.Lock()
	if err != nil || p.mode != "forward" {
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	var pipe sync.WaitGroup
	copyAndClose := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	pipe.Go(func() { copyAndClose(up, c) })
	pipe.Go(func() { copyAndClose(c, up) })
	pipe.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// closeConns closes every connection; p.mu is held.
func (p *faultProxy) closeConns() {
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as when a server dies
		}
		c.Close()
		delete(p.conns, c)
	}
}

func (p *faultProxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = "refuse"
	err := p.ln.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Errorf("closing the MongoDB proxy: %v", err)
	}
	p.ln = nil
	p.closeConns()
}

func (p *faultProxy) blackhole() {
	p.mu.Lock()
	p.mode = "blackhole"
	p.closeConns()
	p.mu.Unlock()
	p.listen()
}

func (p *faultProxy) restore() {
	p.mu.Lock()
	p.mode = "forward"
	p.closeConns() // the held ones: the client sees them fail and dials again
	listening := p.ln != nil
	p.mu.Unlock()
	if !listening {
		p.listen()
	}
}
