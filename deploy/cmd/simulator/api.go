package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// An API's real clientele: apps on phones polling on a timer, server
// integrations and SDKs from cloud networks with their libraries' user
// agents, webhook senders, monitors, a partner's batch job with an API
// key, a GraphQL client. Their circumstances (a library's user agent, a
// hosting network, a metronome's timing, bursts) look like a bot's; their
// behaviour (few distinct paths, no errors of their own making, no
// probing, no enumeration) does not. None may be refused (Measure API).

// Mobile apps' user agents: Android's HTTP library, an iOS app's.
var appUAs = []string{
	"okhttp/4.12.0",
	"MyShop/5.2.1 (iPhone; iOS 17.4; Scale/3.00) CFNetwork/1494.0.7 Darwin/23.4.0",
}

// Server-side HTTP libraries' user agents, as they send them by default.
var integrationUAs = []string{
	"python-requests/2.32.3",
	"Go-http-client/1.1",
	"Java-http-client/17.0.10",
	"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
	"axios/1.7.2",
}

// SDKs that retry failed calls with exponential backoff.
var sdkUAs = []string{
	"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64",
	"Stripe/v1 GoBindings/76.0.0",
}

// GraphQL clients: Apollo's iOS client, graphql-request from Node.
var graphqlUAs = []string{"apollo-ios/1.9.3", "graphql-request/6.1.0"}

const (
	batchUA   = "Apache-HttpClient/4.5.14 (Java/17.0.10)"
	monitorUA = "curl/8.5.0"
	// apiKeyField is the field of the gateway's answer to a successful
	// login that holds the API key it minted (api_key.auth_path: see
	// gateway/internal/server/auth.go, login).
	apiKeyField = "API_KEY"
	// batchPages is how many pages of the catalogue the batch job walks,
	// round and round.
	batchPages = 20
)

// The demo shop's customers (customer001/pw-001 ... customer500/pw-500)
// the scenarios that log in use: people take theirs from 1, the keyed
// integrations from integrationKeyCustomers, the batch job from
// batchCustomers, a leaked key's owner from leakedCustomers.
const (
	shopCustomers           = 500
	integrationKeyCustomers = 401
	batchCustomers          = 441
	leakedCustomers         = 481
)

// customerLogin is the JSON login of the shop's n-th customer (from 1,
// wrapping round at shopCustomers).
func customerLogin(n int) string {
	n = (n-1)%shopCustomers + 1
	return fmt.Sprintf(`{"username":"customer%03d","password":"pw-%03d"}`, n, n)
}

// mintKey logs in as the shop's n-th customer (POST /auth through the
// gateway, which mints an API key when the shop says yes) and returns the
// key. It tries again (after 2, 4, 8 ... at most 30 s) until it gets one
// or the run ends; the report counts the clients that got one.
func (c *client) mintKey(ctx context.Context, ua string, customer int) string {
	wait := 2 * time.Second
	for ctx.Err() == nil {
		r, ok := c.send(ctx, http.MethodPost, "/auth", customerLogin(customer), ua, "Accept", "application/json")
		if !ok {
			return ""
		}
		if key := keyFrom(r); key != "" {
			c.rec.keyed(c)
			return key
		}
		if !sleep(ctx, time.Duration(float64(wait)/c.rate)) {
			return ""
		}
		wait = min(2*wait, 30*time.Second)
	}
	return ""
}

// keyFrom reads the API key from the answer to a login: a 200 whose JSON
// has it in apiKeyField; "" otherwise.
func keyFrom(r response) string {
	if r.status != http.StatusOK {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(r.body, &m) != nil {
		return ""
	}
	key, _ := m[apiKeyField].(string)
	return key
}

// idle pauses between lo and hi seconds, uniformly, scaled by the run's
// rate factor.
func (c *client) idle(ctx context.Context, lo, hi float64) bool {
	return sleep(ctx, time.Duration((lo+(hi-lo)*c.rng.Float64())/c.rate*float64(time.Second)))
}

// randomProduct is the path of one of the shop's 8 products in the API,
// drawn at random.
func (c *client) randomProduct() string {
	return "/api/products/" + strconv.Itoa(1+c.rng.IntN(8))
}

// appTimer is a mobile app polling the catalogue on a fixed timer.
func appTimer(ctx context.Context, c *client) { appPoll(ctx, c, 0) }

// appJitter is the same app with a timer varied by ±40 %.
func appJitter(ctx context.Context, c *client) { appPoll(ctx, c, 0.4) }

// appPoll is a phone's app on a residential address (okhttp or an iOS
// app's CFNetwork user agent, alternating by client): GET /api/products
// every 1–3 s (drawn per client), by the timer, varied by ±jitter; one
// poll in seven opens a product instead.
func appPoll(ctx context.Context, c *client, jitter float64) {
	ua := appUAs[c.n%len(appUAs)]
	period := 1 + 2*c.rng.Float64()
	c.arrive(ctx, period)
	c.every(ctx, 1/period, jitter, func() {
		path := "/api/products"
		if c.rng.IntN(7) == 0 {
			path = c.randomProduct()
		}
		c.do(ctx, http.MethodGet, path, "", ua, "Accept", "application/json")
	})
}

// integration is a server-side integration from a cloud network with its
// HTTP library's user agent and no credential.
func integration(ctx context.Context, c *client) {
	integrate(ctx, c, integrationUAs[c.n%len(integrationUAs)], "")
}

// integrationKey is the same integration with an API key: it logs in
// once, then sends the key on every call.
func integrationKey(ctx context.Context, c *client) {
	ua := integrationUAs[c.n%len(integrationUAs)]
	if key := c.mintKey(ctx, ua, integrationKeyCustomers+c.n); key != "" {
		integrate(ctx, c, ua, key)
	}
}

// integrate calls the API at a fixed rate drawn per client from 1–5 a
// second, on a timer: the product list, a product by a random id, now and
// then the status; with X-API-Key when key is not "".
func integrate(ctx context.Context, c *client, ua, key string) {
	rate := 1 + 4*c.rng.Float64()
	hdr := []string{"Accept", "application/json"}
	if key != "" {
		hdr = append(hdr, "X-API-Key", key)
	}
	c.every(ctx, rate, 0, func() {
		var path string
		switch r := c.rng.Float64(); {
		case r < 0.4:
			path = "/api/products"
		case r < 0.9:
			path = c.randomProduct()
		default:
			path = "/api/status"
		}
		c.do(ctx, http.MethodGet, path, "", ua, hdr...)
	})
}

// webhookSender is a service that calls the shop's webhook endpoint.
type webhookSender struct {
	ua, provider string
	// event is one delivery's body and headers.
	event func(c *client) (body string, hdr []string)
}

var webhookSenders = []webhookSender{
	{"Stripe/1.0 (+https://stripe.com/docs/webhooks)", "stripe", func(c *client) (string, []string) {
		id := fmt.Sprintf("%016x", c.rng.Uint64())
		return fmt.Sprintf(`{"id":"evt_%s","object":"event","type":"payment_intent.succeeded"}`, id),
			[]string{"Stripe-Signature", fmt.Sprintf("t=%d,v1=%064x", time.Now().Unix(), c.rng.Uint64())}
	}},
	{"GitHub-Hookshot/abc123", "github", func(c *client) (string, []string) {
		id := fmt.Sprintf("%08x-%04x-%04x", c.rng.Uint32(), c.rng.Uint32()&0xffff, c.rng.Uint32()&0xffff)
		return `{"action":"completed","check_run":{"status":"completed"}}`,
			[]string{"X-GitHub-Event", "check_run", "X-GitHub-Delivery", id, "X-Hub-Signature-256", fmt.Sprintf("sha256=%064x", c.rng.Uint64())}
	}},
}

// webhook is a webhook sender from a cloud network (Stripe's or GitHub's,
// alternating by client): a burst of 20–50 POST /webhooks/{provider}
// spread over one second (a batch of events delivered at once), then
// 10–30 s idle.
func webhook(ctx context.Context, c *client) {
	s := webhookSenders[c.n%len(webhookSenders)]
	path := "/webhooks/" + s.provider
	c.arrive(ctx, 5)
	for ctx.Err() == nil {
		n := 20 + c.rng.IntN(31)
		gap := time.Duration(float64(time.Second) / float64(n) / c.rate)
		start := time.Now()
		for i := range n {
			body, hdr := s.event(c)
			c.do(ctx, http.MethodPost, path, body, s.ua, hdr...)
			if !sleep(ctx, time.Until(start.Add(time.Duration(i+1)*gap))) {
				return
			}
		}
		if !c.idle(ctx, 10, 30) {
			return
		}
	}
}

// batchKey is a partner's batch job from a cloud network with an API
// key: 50 requests a second on a timer, alternating a page of the
// catalogue (GET /api/products?page=1..20, round and round) and an order
// (POST /api/orders). 3000 a minute: within the per-key limit of
// deploy/config/detect.yaml (6000 a minute).
func batchKey(ctx context.Context, c *client) {
	key := c.mintKey(ctx, batchUA, batchCustomers+c.n)
	if key == "" {
		return
	}
	i := 0
	c.every(ctx, 50, 0, func() {
		if i%2 == 0 {
			c.do(ctx, http.MethodGet, "/api/products?page="+strconv.Itoa(i/2%batchPages+1), "", batchUA,
				"Accept", "application/json", "X-API-Key", key)
		} else {
			c.do(ctx, http.MethodPost, "/api/orders", fmt.Sprintf(`{"product_id":%d,"quantity":%d}`, 1+c.rng.IntN(8), 1+c.rng.IntN(5)), batchUA,
				"Accept", "application/json", "X-API-Key", key)
		}
		i++
	})
}

// monitor is an uptime probe from a cloud network: curl on GET
// /api/status every 10 s, to the millisecond.
func monitor(ctx context.Context, c *client) {
	c.arrive(ctx, 10)
	c.every(ctx, 0.1, 0, func() {
		c.do(ctx, http.MethodGet, "/api/status", "", monitorUA, "Accept", "*/*")
	})
}

// SDK retries: at most sdkRetries after the first try, waiting
// sdkBackoff, then twice, four times as long.
const (
	sdkRetries = 3
	sdkBackoff = 200 * time.Millisecond
	sdkRate    = 2 // calls a second
)

// retryable reports whether an SDK tries a call again after this status:
// throttled or the service unavailable.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the wait before the SDK's retry-th retry (from 1): 0.2, 0.4,
// 0.8 s.
func backoff(retry int) time.Duration { return sdkBackoff << (retry - 1) }

// sdkRetry is an SDK in a cloud network calling GET /api/flaky (which
// answers 503 about 30 % of the time) about twice a second, retrying each
// failed call after 0.2, 0.4, 0.8 s (at most 3 retries); a call that
// retried delays the next, which is not made up for.
func sdkRetry(ctx context.Context, c *client) {
	ua := sdkUAs[c.n%len(sdkUAs)]
	interval := time.Duration(float64(time.Second) / (sdkRate * c.rate))
	c.arrive(ctx, 1)
	next := time.Now()
	for ctx.Err() == nil {
		for retry := 0; ; retry++ {
			r, ok := c.send(ctx, http.MethodGet, "/api/flaky", "", ua, "Accept", "application/json")
			if !ok || !retryable(r.status) || retry == sdkRetries {
				break
			}
			if !sleep(ctx, time.Duration(float64(backoff(retry+1))/c.rate)) {
				return
			}
		}
		next = next.Add(time.Duration(float64(interval) * (0.8 + 0.4*c.rng.Float64())))
		if now := time.Now(); next.Before(now) {
			next = now
		}
		if !sleep(ctx, time.Until(next)) {
			return
		}
	}
}

// graphqlQueries are the small operations a shop's GraphQL client sends.
var graphqlQueries = []func(c *client) string{
	func(c *client) string {
		return `{"operationName":"Products","query":"query Products { products { id name price } }","variables":{}}`
	},
	func(c *client) string {
		return fmt.Sprintf(`{"operationName":"Product","query":"query Product($id: ID!) { product(id: $id) { id name price stock } }","variables":{"id":"%d"}}`, 1+c.rng.IntN(8))
	},
	func(c *client) string {
		return fmt.Sprintf(`{"operationName":"AddToCart","query":"mutation AddToCart($id: ID!, $qty: Int!) { addToCart(productId: $id, quantity: $qty) { id } }","variables":{"id":"%d","qty":1}}`, 1+c.rng.IntN(8))
	},
}

// graphql is a GraphQL client (Apollo's on a phone, graphql-request,
// alternating by client) on a residential address: only POST /graphql,
// small queries, 1–3 a second (drawn per client, ±20 %).
func graphql(ctx context.Context, c *client) {
	ua := graphqlUAs[c.n%len(graphqlUAs)]
	hdr := []string{"Accept", "application/graphql-response+json, application/json"}
	if c.n%len(graphqlUAs) == 0 {
		hdr = append(hdr, "Apollographql-Client-Name", "MyShop-iOS", "Apollographql-Client-Version", "5.2.1")
	}
	rate := 1 + 2*c.rng.Float64()
	c.arrive(ctx, 1)
	c.every(ctx, rate, 0.2, func() {
		q := graphqlQueries[0]
		if r := c.rng.IntN(10); r >= 4 {
			q = graphqlQueries[1+r%2]
		}
		c.do(ctx, http.MethodPost, "/graphql", q(c), ua, hdr...)
	})
}
