package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A browser's page: the HTML, then its assets over a few connections.
const (
	browserConns    = 6   // connections a browser opens to one host
	assetsMedian    = 70  // page assets, log-normal median
	assetsSigma     = 0.5 // log-normal spread: ~30 at the 5th percentile, ~150 at the 93rd
	assetsMin       = 5
	assetsMax       = 150
	thumbsMin       = 10  // product thumbnails of a category page, from
	thumbsMax       = 25  // the shop's image service
	pageThinkMedian = 8.0 // seconds between pages of a visit
	visitGapMedian  = 30.0
)

// Accept and Sec-Fetch-Dest as browsers send them, by kind of resource.
var fetchHeaders = map[string][2]string{
	"document": {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", "document"},
	"image":    {"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image"},
	"style":    {"text/css,*/*;q=0.1", "style"},
	"script":   {"*/*", "script"},
	"font":     {"*/*", "font"},
}

// assetCount draws a page's number of assets: log-normal, median 70,
// between 5 and 150 (the HTTP Archive's image-heavy shop pages).
func (c *client) assetCount() int {
	n := int(math.Round(math.Exp(math.Log(assetsMedian) + assetsSigma*c.rng.NormFloat64())))
	return min(max(n, assetsMin), assetsMax)
}

// isMobile reports whether ua is a phone's browser.
func isMobile(ua string) bool {
	return strings.Contains(ua, "iPhone") || strings.Contains(ua, "Android")
}

// asset is one resource of a page.
type asset struct{ path, kind string }

// pageAssets returns a page's n assets: the site's stylesheet, scripts and
// font first, then its pictures (photos and thumbnails of the products it
// shows; names differ from page to page, as on a real shop).
func (c *client) pageAssets(slug string, n int) []asset {
	out := []asset{
		{"/assets/app.css", "style"}, {"/assets/vendor.js", "script"},
		{"/assets/app.js", "script"}, {"/assets/fonts/inter.woff2", "font"},
	}
	exts := []string{".webp", ".jpg", ".png", ".svg"}
	for k := 0; len(out) < n; k++ {
		switch r := c.rng.IntN(10); {
		case r < 6:
			out = append(out, asset{fmt.Sprintf("/assets/img/%s-%d%s", slug, k, exts[c.rng.IntN(2)]), "image"})
		case r < 9:
			out = append(out, asset{fmt.Sprintf("/assets/img/thumb/%d%s", 1+c.rng.IntN(200), exts[c.rng.IntN(3)]), "image"})
		default:
			out = append(out, asset{fmt.Sprintf("/assets/icons/%d.svg", c.rng.IntN(40)), "image"})
		}
	}
	return out[:n]
}

// thumbnails returns n product thumbnails as a category page shows them:
// from the shop's image service, /image/{id}/productModel/200x200, with no
// extension (the shop answers image/jpeg: only the Content-Type says they
// are pictures, as on real shops).
func (c *client) thumbnails(n int) []asset {
	out := make([]asset, n)
	for i := range out {
		out[i] = asset{fmt.Sprintf("/image/%d/productModel/200x200", 10000+c.rng.IntN(90000)), "image"}
	}
	return out
}

// fetch sends one browser request after the round trip a real connection
// would wait, with the browser's headers for the kind of resource.
func (c *client) fetch(ctx context.Context, rtt time.Duration, ua, path, kind, referer string) {
	if !sleep(ctx, rtt) {
		return
	}
	h := fetchHeaders[kind]
	hdr := []string{"Accept", h[0], "Accept-Language", "en-US,en;q=0.9", "Sec-Fetch-Dest", h[1]}
	switch {
	case kind == "document":
		hdr = append(hdr, "Sec-Fetch-Mode", "navigate")
	default:
		hdr = append(hdr, "Sec-Fetch-Mode", "no-cors")
	}
	if referer != "" {
		hdr = append(hdr, "Referer", c.target+referer, "Sec-Fetch-Site", "same-origin")
	} else {
		hdr = append(hdr, "Sec-Fetch-Site", "none")
	}
	c.do(ctx, "GET", path, "", ua, hdr...)
}

// loadPage loads a page as a browser does: the HTML, then its assets over
// browserConns connections, each request one round trip after the
// previous on its connection, each with the page as its referer.
func (c *client) loadPage(ctx context.Context, ua, path, referer string, assets []asset) {
	c.fetch(ctx, c.rtt, ua, path, "document", referer)
	work := make(chan asset)
	var wg sync.WaitGroup
	for range browserConns {
		wg.Go(func() {
			for a := range work {
				c.fetch(ctx, c.rtt, ua, a.path, a.kind, path)
			}
		})
	}
	for _, a := range assets {
		if ctx.Err() != nil {
			break
		}
		work <- a
	}
	close(work)
	wg.Wait()
}

// browser is a person on a phone or a computer visiting the shop: visits
// of a few pages (home, collections, product pages), each page with its N
// assets (assetCount) and a collection (category) page also with 10–25
// product thumbnails without an extension (thumbnails), seconds of
// reading between pages (log-normal,
// median 8 s) and a longer pause between visits. The first page of a visit
// also fetches /favicon.ico and, on phones, the home-screen icons the shop
// does not have (404), as iOS and Android browsers do.
func browser(ctx context.Context, c *client) {
	ua := browsers[c.rng.IntN(len(browsers))]
	c.arrive(ctx, 10) // people arrive spread out
	collections := []string{"sneakers", "running", "outdoor", "sale", "new"}
	for ctx.Err() == nil {
		pages := 1 + int(math.Floor(math.Log(1-c.rng.Float64())/math.Log(0.6))) // geometric, mean 2.5
		referer := ""
		for p := 0; p < pages && ctx.Err() == nil; p++ {
			var path, slug string
			switch {
			case p == 0 && c.rng.Float64() < 0.6:
				path, slug = "/", "home"
			case c.rng.Float64() < 0.3:
				slug = collections[c.rng.IntN(len(collections))]
				path = "/collections/" + slug
			default:
				id := strconv.Itoa(1 + c.rng.IntN(8))
				path, slug = "/products/"+id, "product-"+id
			}
			assets := c.pageAssets(slug, c.assetCount())
			if strings.HasPrefix(path, "/collections/") {
				assets = append(assets, c.thumbnails(thumbsMin+c.rng.IntN(thumbsMax-thumbsMin+1))...)
			}
			c.loadPage(ctx, ua, path, referer, assets)
			if p == 0 {
				icons := []string{"/favicon.ico"}
				if isMobile(ua) {
					icons = append(icons, "/apple-touch-icon-precomposed.png", "/apple-touch-icon.png")
				}
				for _, i := range icons {
					c.fetch(ctx, c.rtt, ua, i, "image", path)
				}
			}
			referer = path
			if p+1 < pages {
				c.thinkLogNormal(ctx, pageThinkMedian, 0.7, 2, 60)
			}
		}
		c.thinkLogNormal(ctx, visitGapMedian, 0.6, 10, 120)
	}
}

// thinkLogNormal pauses for a log-normal time of the given median (in
// seconds) and spread, clipped to lo–hi, scaled by the run's rate factor.
func (c *client) thinkLogNormal(ctx context.Context, median, sigma, lo, hi float64) {
	s := math.Exp(math.Log(median) + sigma*c.rng.NormFloat64())
	s = min(max(s, lo), hi) / c.rate
	sleep(ctx, time.Duration(s*float64(time.Second)))
}

// arrive waits a uniform 0–maxSeconds (scaled by the run's rate factor)
// before a client's first request, so clients do not all start at once.
func (c *client) arrive(ctx context.Context, maxSeconds float64) {
	sleep(ctx, time.Duration(maxSeconds*c.rng.Float64()/c.rate*float64(time.Second)))
}
