package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
)

// client is one request of a load's sequence: the client's address as a
// trusted proxy would name it in X-Forwarded-For, the headers its software
// sends (Accept and Accept-Language are left out when empty), its class
// (classOf its address) and the path it asks for ("" for the run's -path).
type client struct {
	IP, UserAgent, Accept, AcceptLanguage string
	Class, Path                           string
}

// Headers a current desktop Chrome sends with an API call from a page.
const (
	chromeUA       = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	chromeAccept   = "application/json, text/plain, */*"
	chromeLanguage = "en-US,en;q=0.9"
	curlUA         = "curl/8.11.1"
)

// toolUAs are the attack mix's user agents: scripts and scanners.
var toolUAs = []string{
	"python-requests/2.32.3", "curl/8.11.1", "Go-http-client/1.1",
	"sqlmap/1.8.11#stable (https://sqlmap.org)", "Wget/1.24.5", "Scrapy/2.12.0 (+https://scrapy.org)",
}

// residential are /16s that the demo GeoIP databases place in consumer
// ISPs (deploy/cmd/geoipgen): legitimate clients come from them.
var residential = [][2]byte{{24, 0}, {90, 0}, {49, 0}}

// legitIP is the i-th legitimate client's address (i < 3*65536), spread
// over the residential networks.
func legitIP(i int) string {
	p := residential[i%len(residential)]
	j := i / len(residential)
	return fmt.Sprintf("%d.%d.%d.%d", p[0], p[1], j>>8&0xff, j&0xff)
}

func browser(ip string) client {
	return client{IP: ip, UserAgent: chromeUA, Accept: chromeAccept, AcceptLanguage: chromeLanguage, Class: classOf(ip)}
}

// Loads. api and browsers are the legitimate ones: not one of their
// requests may be refused.
const (
	loadAPI      = "api"      // the API mix (apiMix)
	loadBrowsers = "browsers" // distinct Chrome browsers, round robin (the "legit" load before 2026-12-07)
	loadHammer   = "hammer"
	loadMix      = "mix"
	loadWarmup   = "warmup"
)

// legitLoads are the loads every request of which must be forwarded.
var legitLoads = []string{loadAPI, loadBrowsers}

// Attackers in the mix and the hammer come from a hosting network.
const (
	mixAttackers = 20
	hammerIP     = "45.1.0.7"
)

// sequence is the order in which a load's requests cycle through its
// clients; every generator walks it from the start, round robin.
func sequence(load string, n int) []client {
	switch load {
	case loadHammer:
		return []client{{IP: hammerIP, UserAgent: curlUA, Accept: "*/*", Class: classOf(hammerIP)}}
	case loadWarmup:
		// Addresses no other load uses (49.0.240.0/20), so that warming
		// up leaves the measured clients untouched.
		out := make([]client, 4096)
		for i := range out {
			out[i] = browser(fmt.Sprintf("49.0.%d.%d", 240+i>>8, i&0xff))
		}
		return out
	case loadMix:
		// Every tenth request is from one of the attackers, in turn; the
		// others are from distinct legitimate clients.
		out := make([]client, 0, n)
		legit := 0
		for i := range n {
			if i%10 == 9 {
				k := (i / 10) % mixAttackers
				ip := fmt.Sprintf("45.0.0.%d", 10+k)
				out = append(out, client{IP: ip, UserAgent: toolUAs[k%len(toolUAs)], Accept: "*/*", Class: classOf(ip)})
				continue
			}
			out = append(out, browser(legitIP(legit)))
			legit++
		}
		return out
	default:
		out := make([]client, n)
		for i := range out {
			out[i] = browser(legitIP(i))
		}
		return out
	}
}

// distinct counts the distinct addresses among the first k requests of seq.
func distinct(seq []client, k int64) int {
	if k > int64(len(seq)) {
		k = int64(len(seq))
	}
	seen := make(map[string]struct{}, k)
	for _, c := range seq[:k] {
		seen[c.IP] = struct{}{}
	}
	return len(seen)
}

// header is the request header a client sends.
func (c client) header() http.Header {
	h := http.Header{
		"X-Forwarded-For": {c.IP},
		"User-Agent":      {c.UserAgent},
	}
	if c.Accept != "" {
		h["Accept"] = []string{c.Accept}
	}
	if c.AcceptLanguage != "" {
		h["Accept-Language"] = []string{c.AcceptLanguage}
	}
	return h
}

// writeClients writes seq for the wrk script: one request a line, fields
// (address, user agent, Accept, Accept-Language, path) separated by tabs.
func writeClients(path string, seq []client) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, c := range seq {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.IP, c.UserAgent, c.Accept, c.AcceptLanguage, c.Path)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
