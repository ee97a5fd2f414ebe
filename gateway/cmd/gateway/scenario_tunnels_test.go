package main

// Open WebSocket tunnels and bans, through the real gateway (issue 19,
// item 2): a ban or a deny-list addition closes the client's open tunnels
// within a second, on every gateway sharing the Redis; tunnel opens are
// requests of the chain; a client holds at most max_tunnels_per_client.
// SECURITY.md, "Upgrades and tunnels"; gateway/internal/tunnels.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// tunnelConfig: WebSockets on /ws/ (U1 is made an echo), a keyed route,
// and logins at U2.
const tunnelConfig = `
routes:
  - {path: /ws/, upstream: "{{U1}}"}
  - {path: /keyed/, upstream: "{{U1}}", auth: api_key}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key:
  auth_upstream: "{{U2}}"
  invalid_window: 10s
  invalid_threshold: 3
  block_duration: 1h
login_protection:
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
`

// banDeadline is the spec's bound: a tunnel is closed within a second of
// the ban.
const banDeadline = time.Second

// closedBy asserts that c is closed by the gateway before deadline (the
// moment the ban was asked for, plus banDeadline): a read ends with the
// connection closed, not with the deadline passing.
func closedBy(t *testing.T, c *websocket.Conn, deadline time.Time, what string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(deadline))
	_, _, err := c.ReadMessage()
	require.Error(t, err, what)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "%s: the tunnel was still open %v after the ban (%v)", what, banDeadline, err)
}

// openWS opens a WebSocket through s from ip and checks it echoes.
func openWS(t *testing.T, s *stack, ip string, hdr ...string) *websocket.Conn {
	t.Helper()
	c, resp, err := s.dialWS(ip, "/ws/chat", hdr...)
	require.NoError(t, err, "handshake: %v", resp)
	wsRoundTrip(t, c, "hello from "+ip)
	return c
}

// refused dials a WebSocket that the gateway must refuse with code; it
// returns the answer's body.
func refused(t *testing.T, s *stack, ip string, code int) string {
	t.Helper()
	c, resp, err := s.dialWS(ip, "/ws/chat")
	require.Error(t, err, "the handshake was accepted")
	require.Nil(t, c)
	require.NotNil(t, resp, "%v", err)
	assert.Equal(t, code, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// An admin ban closes the client's tunnels within a second (its address's
// and those of principals using its address), and no other client's; the
// client cannot open a new one.
func TestTunnelIsClosedByAnAdminBan(t *testing.T) {
	t.Parallel()
	s := startStack(t, tunnelConfig)
	wsEcho(s.u1)
	loginAs(s.u2, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.10.1")

	anon := openWS(t, s, "127.0.10.1")
	withKey := openWS(t, s, "127.0.10.1", "X-API-Key", key)
	bystander := openWS(t, s, "127.0.10.2")
	assert.Equal(t, 3.0, s.metric(t, "bulwark_gateway_tunnels_open"))

	asked := time.Now()
	r := s.adminPost("/v1/admin/bans", `{"ip":"127.0.10.1","ttl":"1h","reason":"test"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	closedBy(t, anon, asked.Add(banDeadline), "anonymous tunnel")
	closedBy(t, withKey, asked.Add(banDeadline), "a principal's tunnel from the banned address")
	wsRoundTrip(t, bystander, "still here")

	assert.Contains(t, refused(t, s, "127.0.10.1", http.StatusForbidden), "Client banned")
	// The metrics; a tunnel's request is recorded, as 101, when it ends.
	assert.Eventually(t, func() bool {
		return s.metric(t, `bulwark_gateway_tunnels_closed_total{reason="ban"}`) == 2 && s.metric(t, "bulwark_gateway_tunnels_open") == 1 &&
			s.metric(t, `bulwark_gateway_requests_total{code="101",decision="forwarded",route="/ws/"}`) == 2
	}, 5*time.Second, 20*time.Millisecond)
}

// A ban the gateway makes itself (here: repeated bad keys ban the
// address) closes the client's tunnels at once.
func TestTunnelIsClosedWhenTheGatewayBansItsClient(t *testing.T) {
	t.Parallel()
	s := startStack(t, tunnelConfig)
	wsEcho(s.u1)
	c := openWS(t, s, "127.0.10.3")
	var asked time.Time
	for i := range 4 {
		asked = time.Now()
		r := s.from("127.0.10.3").get("/keyed/x", "X-API-Key", strings.Repeat("0", 64))
		if r.Code == http.StatusForbidden {
			break
		}
		require.Equal(t, http.StatusUnauthorized, r.Code, "bad key %d", i+1)
	}
	closedBy(t, c, asked.Add(banDeadline), "tunnel of the client the gateway banned")
}

// A network added to the deny list (through the admin API of the gateway
// that holds the tunnels) closes the tunnels of every client in it within
// a second, and of no one else.
func TestTunnelIsClosedByADenyListAddition(t *testing.T) {
	t.Parallel()
	s := startStack(t, tunnelConfig)
	wsEcho(s.u1)
	in1, in2 := openWS(t, s, "127.0.10.17"), openWS(t, s, "127.0.10.18")
	out := openWS(t, s, "127.0.10.24")
	asked := time.Now()
	r := s.adminPost("/v1/admin/lists/deny", `{"cidr":"127.0.10.16/30"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	closedBy(t, in1, asked.Add(banDeadline), "tunnel in the denied network")
	closedBy(t, in2, asked.Add(banDeadline), "another tunnel in the denied network")
	wsRoundTrip(t, out, "outside the network")
	assert.Contains(t, refused(t, s, "127.0.10.17", http.StatusForbidden), "Access denied")
	assert.Eventually(t, func() bool { return s.metric(t, `bulwark_gateway_tunnels_closed_total{reason="deny"}`) == 2 },
		5*time.Second, 20*time.Millisecond)
}

// A client holds at most max_tunnels_per_client tunnels: the next
// handshake gets 429 JSON; a closed tunnel gives its place back; the cap
// reloads.
func TestTunnelsPerClientAreCapped(t *testing.T) {
	t.Parallel()
	s := startStack(t, tunnelConfig+"max_tunnels_per_client: 2\n")
	wsEcho(s.u1)
	first := openWS(t, s, "127.0.10.50")
	openWS(t, s, "127.0.10.50")
	body := refused(t, s, "127.0.10.50", http.StatusTooManyRequests)
	assert.JSONEq(t, `{"error":"Too many open tunnels"}`, stripRequestID(t, body))
	openWS(t, s, "127.0.10.51") // another client has its own places

	require.NoError(t, first.Close())
	require.Eventually(t, func() bool {
		c, _, err := s.dialWS("127.0.10.50", "/ws/chat")
		if err != nil {
			return false
		}
		wsRoundTrip(t, c, "a place came back")
		return true
	}, 5*time.Second, 20*time.Millisecond, "the closed tunnel's place is given back")
	refused(t, s, "127.0.10.50", http.StatusTooManyRequests)

	s.write(tunnelConfig + "max_tunnels_per_client: 3\n")
	require.Equal(t, http.StatusOK, s.adminPost("/v1/admin/reload", "").Code)
	openWS(t, s, "127.0.10.50")
	refused(t, s, "127.0.10.50", http.StatusTooManyRequests)
}

// A tunnel's handshake is a request of the chain like any other: it is
// counted and rate limited (and refused to a banned client: see
// TestTunnelIsClosedByAnAdminBan).
func TestTunnelOpensAreCountedRequests(t *testing.T) {
	t.Parallel()
	s := startStack(t, tunnelConfig+"rate_limit: {requests_per_minute: 3, window: 60s}\n")
	wsEcho(s.u1)
	openWS(t, s, "127.0.10.60")
	require.Equal(t, http.StatusOK, s.from("127.0.10.60").get("/ws/plain").Code)
	openWS(t, s, "127.0.10.60")
	body := refused(t, s, "127.0.10.60", http.StatusTooManyRequests)
	assert.JSONEq(t, `{"error":"Rate limit exceeded"}`, stripRequestID(t, body), "the fourth request, a handshake, is over the limit")
	assert.Equal(t, 2, s.u1.count("/ws/chat"), "the refused handshake never reached the upstream")
}

// Several gateways on one Redis: a ban or a deny-list entry made through
// one closes the tunnels the other holds, through the announcement on the
// Redis channel.

// waitSubscribed waits until every gateway of a deployment has subscribed
// to the ban announcements (as each does when it starts). It does not
// fail: a gateway that never subscribes fails the test where its tunnel
// outlives the ban.
func waitSubscribed(t *testing.T, gws []*stack) {
	t.Helper()
	channel := wire.BanChannel(gws[0].prefix)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n, err := gws[0].rdb.PubSubNumSub(t.Context(), channel).Result()
		if err == nil && n[channel] >= int64(len(gws)) {
			return
		}
	}
	t.Logf("the gateways did not all subscribe to %s", channel)
}

// twoGateways starts two gateways sharing the test Redis and one key
// prefix, with gateway A's U1 a WebSocket echo.
func twoGateways(t *testing.T) (a, b *stack) {
	t.Helper()
	rdb, _ := testenv.Redis(t)
	gws := startGateways(t, 2, tunnelConfig, testenv.RedisURL(t), rdb)
	t.Cleanup(func() { testenv.DeletePrefix(context.Background(), rdb, gws[0].prefix) })
	wsEcho(gws[0].u1)
	waitSubscribed(t, gws)
	return gws[0], gws[1]
}

// The tunnel is on gateway A, the admin ban goes through gateway B.
func TestTunnelIsClosedByABanOnAnotherGateway(t *testing.T) {
	t.Parallel()
	a, b := twoGateways(t)
	c := openWS(t, a, "127.0.10.4")
	other := openWS(t, a, "127.0.10.5")
	asked := time.Now()
	r := b.adminPost("/v1/admin/bans", `{"ip":"127.0.10.4","ttl":"1h","reason":"from gw-2"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	closedBy(t, c, asked.Add(banDeadline), "tunnel on gateway A, ban through gateway B")
	wsRoundTrip(t, other, "still here")
	assert.Contains(t, refused(t, a, "127.0.10.4", http.StatusForbidden), "Client banned")
}

// The tunnels are on gateway A, the deny-list entry is added through
// gateway B; A also refuses the network's requests at once.
func TestTunnelIsClosedByADenyListAdditionOnAnotherGateway(t *testing.T) {
	t.Parallel()
	a, b := twoGateways(t)
	in1, in2 := openWS(t, a, "127.0.10.33"), openWS(t, a, "127.0.10.34")
	out := openWS(t, a, "127.0.10.40")
	asked := time.Now()
	r := b.adminPost("/v1/admin/lists/deny", `{"cidr":"127.0.10.32/29"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	closedBy(t, in1, asked.Add(banDeadline), "tunnel in the denied network")
	closedBy(t, in2, asked.Add(banDeadline), "another tunnel in the denied network")
	wsRoundTrip(t, out, "outside the network")
	assert.Equal(t, http.StatusForbidden, a.from("127.0.10.35").get("/ws/x").Code, "gateway A refuses the network already")
	assert.Contains(t, refused(t, a, "127.0.10.33", http.StatusForbidden), "Access denied")
}

// The same on a Redis Cluster (PUBLISH reaches every node's subscribers):
// a ban and a deny-list entry through gateway B close gateway A's tunnels.
func TestTunnelIsClosedAcrossARedisCluster(t *testing.T) {
	t.Parallel()
	c := testenv.StartRedisCluster(t)
	gws := startGateways(t, 2, tunnelConfig, c.URL(), c.Client())
	a, b := gws[0], gws[1]
	wsEcho(a.u1)
	waitSubscribed(t, gws)
	banned, denied := openWS(t, a, "127.0.10.70"), openWS(t, a, "127.0.10.81")
	asked := time.Now()
	r := b.adminPost("/v1/admin/bans", `{"ip":"127.0.10.70","ttl":"1h","reason":"from gw-2"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	closedBy(t, banned, asked.Add(banDeadline), "ban through gateway B")
	asked = time.Now()
	r = b.adminPost("/v1/admin/lists/deny", `{"cidr":"127.0.10.80/29"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	closedBy(t, denied, asked.Add(banDeadline), "deny-list entry through gateway B")
}
