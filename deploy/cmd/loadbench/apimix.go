package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// The API mix: the clientele of a shop's JSON API rather than of its web
// pages. Each class is a kind of client software, with the headers it sends
// and the networks it calls from; the class of a request is told by its
// address alone (classOf), so that the gateway's log and the scorer
// recorder, which see only addresses, can be split by class.
const (
	classBrowser  = "browser"
	classAndroid  = "android"
	classIOS      = "ios"
	classSDK      = "sdk"
	classCurl     = "curl"
	classAttacker = "attacker" // the attack mix's and the hammer's tools
	classWarmup   = "warmup"   // the warm-up's browsers, never measured
	classOther    = "other"
)

// legitClasses are the API mix's classes, in the order they are reported.
var legitClasses = []string{classBrowser, classAndroid, classIOS, classSDK, classCurl}

// reportClasses are the columns of the by-class tables.
var reportClasses = append(append([]string(nil), legitClasses...), classAttacker)

// variant is one client software of a class: its user agent and the
// Accept and Accept-Language it sends ("" for none).
type variant struct {
	UA, Accept, Lang string
}

// apiClass is one class of the API mix.
type apiClass struct {
	Name     string
	Percent  int // of the clients, and so of the requests
	Variants []variant
	// Residential classes: third octets [Lo, Hi) of each apiHomes network.
	// Lo == Hi: the class calls from apiClouds instead.
	Lo, Hi int
	Where  string // for the report
}

const (
	iosUA  = "MyShop/5.2.1 (iPhone; iOS 17.4; Scale/3.00) CFNetwork/1494.0.7 Darwin/23.4.0"
	jsonCT = "application/json"
)

// chromeUAs are current Chrome releases on Windows, macOS and Android.
var chromeUAs = []string{
	chromeUA,
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
}

// apiHomes are the residential /16s of the demo GeoIP databases
// (deploy/cmd/geoipgen: Comcast Chicago, AS7922; BT Manchester, AS2856)
// that no other load uses: the browsers load and the attack mix's legitimate
// clients are in 24.0/16, 90.0/16 and 49.0/16, the attackers in 45.0/16 and
// 45.1/16. Each residential class has its own slice of third octets in both.
var apiHomes = [][2]byte{{73, 0}, {86, 128}}

// apiClouds are cloud ranges of the demo databases whose AS numbers are in
// the scorer's DefaultHostingASNs: the server SDKs call from them, round
// robin, at most 65,536 clients from each.
var apiClouds = []struct {
	Prefix netip.Prefix
	Name   string
}{
	{netip.MustParsePrefix("3.80.0.0/12"), "AWS AS14618"},
	{netip.MustParsePrefix("34.64.0.0/10"), "Google Cloud AS396982"},
	{netip.MustParsePrefix("13.64.0.0/11"), "Azure AS8075"},
	{netip.MustParsePrefix("159.89.0.0/16"), "DigitalOcean AS14061"},
	{netip.MustParsePrefix("88.198.0.0/16"), "Hetzner AS24940"},
}

var apiClasses = []apiClass{
	{Name: classBrowser, Percent: 40, Lo: 0, Hi: 96, Variants: []variant{
		{chromeUAs[0], chromeAccept, chromeLanguage}, {chromeUAs[1], chromeAccept, chromeLanguage}, {chromeUAs[2], chromeAccept, chromeLanguage},
	}},
	{Name: classAndroid, Percent: 25, Lo: 96, Hi: 176, Variants: []variant{{"okhttp/4.12.0", jsonCT, ""}}},
	{Name: classIOS, Percent: 15, Lo: 176, Hi: 232, Variants: []variant{{iosUA, jsonCT, "en-US,en;q=0.9"}}},
	{Name: classSDK, Percent: 15, Variants: []variant{
		{"python-requests/2.32.3", "*/*", ""}, {"Go-http-client/1.1", "", ""}, {"Java-http-client/17.0.10", "", ""},
	}},
	{Name: classCurl, Percent: 5, Lo: 232, Hi: 256, Variants: []variant{{"curl/8.5.0", "*/*", ""}}},
}

// capacity is how many distinct addresses the class has.
func (c apiClass) capacity() int {
	if c.Lo == c.Hi {
		return len(apiClouds) * 65536
	}
	return len(apiHomes) * (c.Hi - c.Lo) * 256
}

// addr is the class's k-th client address (k < capacity).
func (c apiClass) addr(k int) string {
	if c.Lo == c.Hi {
		p := apiClouds[k%len(apiClouds)].Prefix.Addr().As4()
		j := k / len(apiClouds)
		return fmt.Sprintf("%d.%d.%d.%d", p[0], p[1], int(p[2])+j>>8, int(p[3])+j&0xff)
	}
	h := apiHomes[k%len(apiHomes)]
	j := k / len(apiHomes)
	return fmt.Sprintf("%d.%d.%d.%d", h[0], h[1], c.Lo+j>>8, j&0xff)
}

// where describes the class's networks for the report.
func (c apiClass) where() string {
	if c.Lo == c.Hi {
		var parts []string
		for _, cl := range apiClouds {
			parts = append(parts, cl.Prefix.String()+" "+cl.Name)
		}
		return "hosting: " + strings.Join(parts, ", ")
	}
	var parts []string
	for _, h := range apiHomes {
		parts = append(parts, fmt.Sprintf("%d.%d.%d-%d.x", h[0], h[1], c.Lo, c.Hi-1))
	}
	return "residential: " + strings.Join(parts, ", ")
}

var (
	attackNet = netip.MustParsePrefix("45.0.0.0/15")   // 45.0/16 and 45.1/16: the mix's attackers and the hammer
	warmupNet = netip.MustParsePrefix("49.0.240.0/20") // sequence(loadWarmup)
)

// classOf is the class of a client address, as the bench hands them out.
func classOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return classOther
	}
	a = a.Unmap()
	if !a.Is4() {
		return classOther
	}
	b := a.As4()
	for _, h := range apiHomes {
		if b[0] != h[0] || b[1] != h[1] {
			continue
		}
		for _, c := range apiClasses {
			if c.Lo != c.Hi && int(b[2]) >= c.Lo && int(b[2]) < c.Hi {
				return c.Name
			}
		}
		return classOther
	}
	for _, cl := range apiClouds {
		if cl.Prefix.Contains(a) {
			return classSDK
		}
	}
	switch {
	case attackNet.Contains(a):
		return classAttacker
	case warmupNet.Contains(a):
		return classWarmup
	}
	for _, r := range residential {
		if b[0] == r[0] && b[1] == r[1] {
			return classBrowser
		}
	}
	return classOther
}

// classCounts splits n clients between the API mix's classes by their
// percentages, largest remainder first (ties in class order), so the
// counts add up to n.
func classCounts(n int) []int {
	counts := make([]int, len(apiClasses))
	type rem struct{ i, r int }
	var rems []rem
	left := n
	for i, c := range apiClasses {
		counts[i] = n * c.Percent / 100
		left -= counts[i]
		rems = append(rems, rem{i, n * c.Percent % 100})
	}
	for ; left > 0; left-- {
		best := 0
		for j := range rems {
			if rems[j].r > rems[best].r {
				best = j
			}
		}
		counts[rems[best].i]++
		rems[best].r = -1
	}
	return counts
}

// apiPaths are the five endpoints the mix calls, equally often; {id} is a
// product id from 1 to 8. The bench's upstream answers every path alike.
var apiPaths = []string{"/api/products", "/api/products/{id}", "/api/categories", "/api/cart", "/api/status"}

const apiProducts = 8

// splitmix64 is the mix's random source: a fixed algorithm, so a seed makes
// the same mix with every Go release.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn is uniform in [0, n) but for a bias of n/2^64.
func (s *splitmix64) intn(n int) int {
	hi, _ := bits.Mul64(s.next(), uint64(n))
	return int(hi)
}

func (s *splitmix64) path() string {
	p := apiPaths[s.intn(len(apiPaths))]
	if strings.Contains(p, "{id}") {
		p = strings.Replace(p, "{id}", fmt.Sprint(1+s.intn(apiProducts)), 1)
	}
	return p
}

// apiMix is the API mix's request sequence: n distinct clients split by
// classCounts, each appearing repeat times with a path of its own drawn for
// each, in an order shuffled with seed. Walked round robin at r requests a
// second, a client averages one request every n/r seconds, at irregular
// intervals (its appearances fall anywhere in the cycle).
func apiMix(n, repeat int, seed uint64) ([]client, error) {
	if n < 1 || repeat < 1 {
		return nil, fmt.Errorf("api mix: want at least 1 client and 1 repeat, got %d and %d", n, repeat)
	}
	counts := classCounts(n)
	clients := make([]client, 0, n)
	for i, c := range apiClasses {
		if counts[i] > c.capacity() {
			return nil, fmt.Errorf("api mix: %d %s clients, but its networks hold %d (at most %d clients in all)", counts[i], c.Name, c.capacity(), maxAPIClients())
		}
		for k := range counts[i] {
			v := c.Variants[k%len(c.Variants)]
			clients = append(clients, client{IP: c.addr(k), UserAgent: v.UA, Accept: v.Accept, AcceptLanguage: v.Lang, Class: c.Name})
		}
	}
	rng := splitmix64(seed)
	seq := make([]client, 0, n*repeat)
	for range repeat {
		for _, c := range clients {
			c.Path = rng.path()
			seq = append(seq, c)
		}
	}
	for i := len(seq) - 1; i > 0; i-- { // Fisher-Yates
		j := rng.intn(i + 1)
		seq[i], seq[j] = seq[j], seq[i]
	}
	return seq, nil
}

// maxAPIClients is the most clients the classes' networks hold.
func maxAPIClients() int {
	n := math.MaxInt
	for _, c := range apiClasses {
		n = min(n, c.capacity()*100/c.Percent)
	}
	for ; n > 0; n-- {
		ok := true
		for i, k := range classCounts(n) {
			ok = ok && k <= apiClasses[i].capacity()
		}
		if ok {
			break
		}
	}
	return n
}

// fingerprint identifies a sequence (addresses, user agents, paths, order):
// two runs with the same fingerprint sent the same requests.
func fingerprint(seq []client) string {
	h := fnv.New64a()
	for _, c := range seq {
		fmt.Fprintf(h, "%s\t%s\t%s\t%s\t%s\n", c.IP, c.UserAgent, c.Accept, c.AcceptLanguage, c.Path)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// seqClassCounts counts the requests of each class among count requests
// walked round robin from start.
func seqClassCounts(seq []client, start, count int64) map[string]int64 {
	out := map[string]int64{}
	n := int64(len(seq))
	if n == 0 || count <= 0 {
		return out
	}
	if full := count / n; full > 0 {
		for _, c := range seq {
			out[c.Class] += full
		}
	}
	for i := range count % n {
		out[seq[(start+i)%n].Class]++
	}
	return out
}

// sentByClass is how many requests of each class a generator sent: wrk's
// threads each walk the sequence from their own offset (wrkScript), vegeta
// from the start (threads 1).
func sentByClass(seq []client, requests int64, threads int) map[string]int64 {
	threads = max(1, threads)
	out := map[string]int64{}
	n := int64(len(seq))
	for t := range int64(threads) {
		share := requests / int64(threads)
		if t < requests%int64(threads) {
			share++
		}
		for k, v := range seqClassCounts(seq, t*(n/int64(threads)), share) {
			out[k] += v
		}
	}
	return out
}

// geoCheck asks the scorer (POST base/v1/score, directly, not through the
// recorder) about one address of each API class and checks that its GeoIP
// databases place it as the mix says: every class in a known network (an
// ASN), the SDKs' in a hosting one (the hosting feature at 1), the others
// not. It returns one line per class for the report.
func geoCheck(ctx context.Context, base string) ([]string, error) {
	var lines []string
	for _, c := range apiClasses {
		ip := c.addr(0)
		body, _ := json.Marshal(map[string]any{"ip": ip, "count_1s": 1, "count_10s": 1, "count_60s": 1, "method": "GET", "path": apiPaths[0], "user_agent": c.Variants[0].UA})
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/score", bytes.NewReader(body))
		if err != nil {
			cancel()
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("geo check: %w", err)
		}
		var out struct {
			Geo *struct {
				Country string `json:"country"`
				ASN     uint   `json:"asn"`
				Org     string `json:"org"`
			} `json:"geo"`
			Reasons []struct {
				Feature string  `json:"feature"`
				Value   float64 `json:"value"`
			} `json:"reasons"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("geo check: %s: %s %v", ip, resp.Status, err)
		}
		hosting := false
		for _, r := range out.Reasons {
			if r.Feature == "hosting" && r.Value > 0 {
				hosting = true
			}
		}
		if out.Geo == nil || out.Geo.ASN == 0 {
			return nil, fmt.Errorf("geo check: the scorer knows no network for %s (%s): does it run with the demo GeoIP databases (deploy/cmd/geoipgen)?", ip, c.Name)
		}
		if want := c.Lo == c.Hi; hosting != want {
			return nil, fmt.Errorf("geo check: %s (%s) is in AS%d %s, hosting %v; the API mix wants hosting %v", ip, c.Name, out.Geo.ASN, out.Geo.Org, hosting, want)
		}
		kind := "residential"
		if hosting {
			kind = "hosting"
		}
		lines = append(lines, fmt.Sprintf("%s %s: %s AS%d %s, %s", c.Name, ip, out.Geo.Country, out.Geo.ASN, out.Geo.Org, kind))
	}
	return lines, nil
}
