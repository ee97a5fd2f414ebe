package main

// Issue 14: several gateways on one Sentinel deployment (a master, a
// replica and three sentinels, started by the test) share one ban list and
// one rate limit, and survive a failover of the master as they survive a
// Redis outage: they fail open while there is no master, then find the
// promoted replica through the sentinels by themselves.

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

// sentinelConfig limits /limited/ to five requests a minute per client;
// /api/ is the client traffic kept up through the failover, unlimited.
const sentinelConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
  - {path: /limited/, upstream: "{{U1}}", rate_limit: {requests: 5, window: 60s}}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
`

// startSentinel starts a private Sentinel deployment and n gateways on its
// URL with one key prefix, as n replicas of one deployment behind a load
// balancer.
func startSentinel(t *testing.T, n int, cfg string) (*testenv.RedisSentinel, []*stack) {
	t.Helper()
	sn := testenv.StartRedisSentinel(t)
	return sn, startGateways(t, n, cfg, sn.URL(), sn.Client())
}

// sharedLimit checks that ip's five requests on /limited/, sent round robin
// over gws, count down one budget and that every gateway then refuses the
// sixth.
func sharedLimit(t *testing.T, gws []*stack, ip string) {
	t.Helper()
	for i := range 5 {
		gw := gws[i%len(gws)]
		r := gw.from(ip).get("/limited/x")
		require.Equal(t, http.StatusOK, r.Code, "%s: request %d on %s: %s", ip, i+1, gw.env["BULWARK_GATEWAY_ID"], r.Body)
		assert.Equal(t, strconv.Itoa(4-i), r.Header.Get("RateLimit-Remaining"), "%s: request %d on %s", ip, i+1, gw.env["BULWARK_GATEWAY_ID"])
	}
	for _, gw := range gws {
		assert.Equal(t, http.StatusTooManyRequests, gw.from(ip).get("/limited/x").Code, "%s on %s: the budget spent on the others", ip, gw.env["BULWARK_GATEWAY_ID"])
	}
}

// closedLog is the breaker's log line when it closes, with how long it was
// open.
var closedLog = regexp.MustCompile(`"msg":"redis circuit closed"[^\n]*"open_for":"([^"]+)"`)

// The master is killed under client traffic through three gateways. The
// gateways fail open (200s, never an error) while there is no master; the
// sentinels promote the replica; the gateways follow by themselves: a ban
// written through one gateway is enforced by all, the ban made before the
// kill is still there, and the shared rate limit counts again.
func TestSentinelMasterKilledFailsOver(t *testing.T) {
	t.Parallel()
	sn, gws := startSentinel(t, 3, sentinelConfig)
	const limited, bannedBefore, client, limitedAfter = "127.0.0.150", "127.0.0.151", "127.0.0.152", "127.0.0.153"

	// Before: one rate limit and one ban list for all three.
	sharedLimit(t, gws, limited)
	r := gws[1].adminPost("/v1/admin/bans", `{"ip":"`+bannedBefore+`","ttl":"1h","reason":"before the failover"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	for _, gw := range gws {
		require.Equal(t, http.StatusForbidden, gw.from(bannedBefore).get("/api/x").Code, gw.env["BULWARK_GATEWAY_ID"])
		require.Equal(t, http.StatusOK, gw.from(client).get("/api/x").Code, gw.env["BULWARK_GATEWAY_ID"])
	}
	old := sn.Master()
	// The ban is on the replica before the master dies (replication is
	// asynchronous: a write not yet replicated is lost in a failover).
	require.NoError(t, old.Client().Do(t.Context(), "WAIT", 1, 5000).Err())

	// Client traffic through every gateway, as fast as each answers, from
	// just before the kill until the ban is enforced.
	var (
		mu      sync.Mutex
		answers []int
		errs    []error
	)
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	for _, gw := range gws {
		c := gw.from(client)
		traffic.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.hc.Get(c.base + "/api/x")
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					resp.Body.Close()
					answers = append(answers, resp.StatusCode)
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	stopTraffic := sync.OnceFunc(func() { close(stop); traffic.Wait() })
	t.Cleanup(stopTraffic)
	time.Sleep(300 * time.Millisecond) // traffic before the kill too

	old.Kill()
	killed := time.Now()
	promotedCh := make(chan time.Duration, 1)
	go func() { // polls without failing the test: not on the test's goroutine
		for time.Since(killed) < 30*time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			addrs := sn.MasterAddrs(ctx)
			cancel()
			if !slices.Contains(addrs, old.Addr()) && !slices.Contains(addrs, "") {
				promotedCh <- time.Since(killed)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// A ban on the client, written through gw-1 as soon as it can be, then
	// enforced by all three.
	var written, enforced time.Duration
	banCodes := map[int]int{} // the admin API's answers meanwhile
	deadline := killed.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if written == 0 {
			r := gws[0].adminPost("/v1/admin/bans", `{"ip":"`+client+`","ttl":"1h","reason":"after the failover"}`)
			banCodes[r.Code]++
			if r.Code == http.StatusCreated {
				written = time.Since(killed)
			}
		}
		if written != 0 {
			all := true
			for _, gw := range gws {
				all = all && gw.from(client).get("/api/x").Code == http.StatusForbidden
			}
			if all {
				enforced = time.Since(killed)
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var promoted time.Duration
	select {
	case promoted = <-promotedCh:
	case <-time.After(time.Until(deadline)):
	}
	time.Sleep(300 * time.Millisecond) // traffic after the ban too
	stopTraffic()

	byCode := map[int]int{}
	for _, code := range answers {
		byCode[code]++
	}
	t.Logf("master %s killed: sentinels report the new master after %v; ban written through gw-1 after %v, enforced by all 3 gateways after %v; client responses: %v; ban requests: %v",
		old.Addr(), promoted.Round(10*time.Millisecond), written.Round(10*time.Millisecond), enforced.Round(10*time.Millisecond), byCode, banCodes)
	for code, n := range banCodes {
		assert.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, code,
			"the admin API answered %d × %d: while Redis cannot take the ban it says so (503), never a 500", n, code)
	}
	for _, gw := range gws {
		var openFor []string
		for _, m := range closedLog.FindAllStringSubmatch(gw.out.String(), -1) {
			openFor = append(openFor, m[1])
		}
		t.Logf("%s: circuit opened %v times, open for %v", gw.env["BULWARK_GATEWAY_ID"], gw.metric(t, "bulwark_gateway_redis_circuit_opens_total"), openFor)
	}
	require.NotZero(t, promoted, "the sentinels promoted no master within 30s")
	require.NotZero(t, written, "no ban could be written within 30s of the kill")
	require.NotZero(t, enforced, "the ban was not enforced by every gateway within 30s of the kill")
	assert.Empty(t, errs, "client requests not answered")
	for code, n := range byCode {
		assert.Contains(t, []int{http.StatusOK, http.StatusForbidden}, code, "%d responses of %d: fail open, never an error", n, code)
	}

	// After: the promoted replica has the ban made before, and the rate
	// limit is shared again.
	assert.Same(t, sn.Servers[1], sn.Master())
	for _, gw := range gws {
		assert.Equal(t, http.StatusForbidden, gw.from(bannedBefore).get("/api/x").Code, "%s: the ban made before the kill", gw.env["BULWARK_GATEWAY_ID"])
		assert.Equal(t, http.StatusForbidden, gw.from(client).get("/api/x").Code, "%s: the ban made after", gw.env["BULWARK_GATEWAY_ID"])
		assert.Equal(t, map[string]string{bannedBefore: "before the failover", client: "after the failover"}, gw.bansListed(t), gw.env["BULWARK_GATEWAY_ID"])
	}
	sharedLimit(t, gws, limitedAfter)
	n, err := sn.Master().Client().Exists(t.Context(), gws[0].prefix+"{"+client+"}:ban").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the ban is on the new master")
}
