package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// Attackers that borrow the circumstances of an API's real clients (an
// app's user agent, a residential address, a valid key, a browser's pace)
// so that only their behaviour gives them away.

const (
	// scrapeIDs is how far scraper-okhttp draws product ids: far past
	// the API's 8 products (it answers 404 for the rest).
	scrapeIDs = 5000
	// catalogPages is how many HTML product pages the shop serves
	// (/products/1 ... /products/1000: deploy/cmd/shop's htmlCatalog).
	catalogPages = 1000
	// stuffingAddrs is how many residential proxy addresses each
	// stuffing-resi client rotates over.
	stuffingAddrs = 20
)

// scraperOkhttp scrapes the API with okhttp's user agent from a
// residential address: GET /api/products/{id} for random ids up to 5000
// (no sequential run, many distinct paths, mostly 404), 8 a second.
func scraperOkhttp(ctx context.Context, c *client) {
	c.every(ctx, 8, 0.2, func() {
		c.do(ctx, http.MethodGet, "/api/products/"+strconv.Itoa(1+c.rng.IntN(scrapeIDs)), "", appUAs[0])
	})
}

// stuffingResi is credential stuffing through a residential proxy
// network: a browser's user agent, random user names and passwords, 5
// logins a second, each from the next of the client's 20 addresses
// (client.ips), round and round. The report counts it as one client.
func stuffingResi(ctx context.Context, c *client) {
	ua := browsers[c.rng.IntN(len(browsers))]
	ips := c.ips
	if len(ips) == 0 {
		ips = append(ips, c.ip)
	}
	i := 0
	c.every(ctx, 5, 0.3, func() {
		ip := ips[i%len(ips)]
		i++
		c.do(ctx, http.MethodPost, "/auth", fmt.Sprintf(`{"username":"user%d","password":"%x"}`, c.rng.IntN(100000), c.rng.Uint32()), ua,
			"X-Forwarded-For", ip.String())
	})
}

// leakedKey uses a leaked low-privilege key: it logs in as the customer
// whose key leaked, then walks GET /api/orders/1, 2, 3 ... with the key,
// 5 a second; the shop answers 403 "not your order" for all but the
// customer's own few.
func leakedKey(ctx context.Context, c *client) {
	const ua = "python-requests/2.32.3"
	key := c.mintKey(ctx, ua, leakedCustomers+c.n)
	if key == "" {
		return
	}
	id := 0
	c.every(ctx, 5, 0.1, func() {
		id++
		c.do(ctx, http.MethodGet, "/api/orders/"+strconv.Itoa(id), "", ua, "Accept", "application/json", "X-API-Key", key)
	})
}

// scraperPages fetches the shop's HTML product pages as a browser would
// ask for them (its user agent and headers) but loads none of their
// assets: random pages of the catalogue, 1.2 a second (74 a minute),
// sustained.
func scraperPages(ctx context.Context, c *client) {
	ua := browsers[0]
	c.every(ctx, 1.2, 0.3, func() {
		c.fetch(ctx, 0, ua, "/products/"+strconv.Itoa(1+c.rng.IntN(catalogPages)), "document", "")
	})
}

// scraperRotate is scraperPages rotating four browsers' user agents,
// request by request, at 0.5–1 page a second (drawn per client).
func scraperRotate(ctx context.Context, c *client) {
	rate := 0.5 + 0.5*c.rng.Float64()
	i := 0
	c.every(ctx, rate, 0.3, func() {
		ua := browsers[i%4]
		i++
		c.fetch(ctx, 0, ua, "/products/"+strconv.Itoa(1+c.rng.IntN(catalogPages)), "document", "")
	})
}
