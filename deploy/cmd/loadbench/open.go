package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// openOutput is an open-loop run: every request's latency is kept, so the
// percentiles are exact (no histogram's rounding).
type openOutput struct {
	Rate      int              `json:"rate"`
	Requests  int64            `json:"requests"`
	Seconds   float64          `json:"seconds"`      // the sending window
	Wall      float64          `json:"wall_seconds"` // until the last answer
	Codes     map[string]int64 `json:"codes"`
	Errors    int64            `json:"errors"`
	LatencyMS latencyMS        `json:"latency_ms"`
}

type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// percentiles of ds, which it sorts.
func percentiles(ds []time.Duration) latencyMS {
	if len(ds) == 0 {
		return latencyMS{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latencyMS{
		P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999),
		Max: ms(ds[len(ds)-1]), Mean: ms(sum / time.Duration(len(ds))),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// openLoop sends rate requests a second to url for d, whatever the target
// does: a request is sent when it is due, not when an earlier one has been
// answered, so a stalled target shows in the latencies instead of slowing
// the generator (no coordinated omission). The requests of seq are sent in
// order from the start, round robin, to base + their path (path when they
// name none).
func openLoop(base, path string, seq []client, rate int, d time.Duration) *openOutput {
	type target struct {
		url    string
		header http.Header
	}
	targets := make([]target, len(seq))
	headers, urls := map[string]http.Header{}, map[string]string{}
	for i, c := range seq {
		h, ok := headers[c.IP+"\x00"+c.UserAgent]
		if !ok {
			h = c.header()
			headers[c.IP+"\x00"+c.UserAgent] = h
		}
		p := c.Path
		if p == "" {
			p = path
		}
		u, ok := urls[p]
		if !ok {
			u = base + p
			urls[p] = u
		}
		targets[i] = target{u, h}
	}
	var next atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		tg := targets[(next.Add(1)-1)%uint64(len(targets))]
		t.Method, t.URL, t.Header = http.MethodGet, tg.url, tg.header
		return nil
	}
	atk := vegeta.NewAttacker(
		vegeta.KeepAlive(true),
		vegeta.Connections(4096),
		vegeta.Timeout(10*time.Second),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.HTTP2(false),
	)
	out := &openOutput{Rate: rate, Codes: map[string]int64{}}
	lat := make([]time.Duration, 0, int(float64(rate)*d.Seconds())+16)
	start := time.Now()
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, d, "open") {
		out.Requests++
		if res.Error != "" && res.Code == 0 {
			out.Errors++
		} else {
			out.Codes[strconv.Itoa(int(res.Code))]++
		}
		lat = append(lat, res.Latency)
	}
	out.Seconds, out.Wall = d.Seconds(), time.Since(start).Seconds()
	out.LatencyMS = percentiles(lat)
	return out
}

// runOpen is one open-loop run against one target with a legitimate load,
// for profiling a target by hand (make bench runs the whole comparison).
func runOpen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	url := fs.String("url", "", "target base URL, path included for -load browsers (required)")
	load := fs.String("load", loadAPI, "api (the API mix, its own paths) or browsers (the URL's path)")
	rate := fs.Int("rate", 1000, "requests per second")
	d := fs.Duration("duration", 8*time.Second, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *rate < 1 || *d <= 0 {
		return errors.New("open: -url, a positive -rate and -duration are required")
	}
	var seq []client
	base, path := *url, ""
	switch *load {
	case loadAPI:
		var err error
		if seq, err = apiMix(defaultAPIClients, defaultAPIRepeat, defaultAPISeed); err != nil {
			return err
		}
		base = strings.TrimRight(base, "/")
	case loadBrowsers:
		seq = sequence(loadBrowsers, 50000)
	default:
		return fmt.Errorf("open: -load %q: want api or browsers", *load)
	}
	o := openLoop(base, path, seq, *rate, *d)
	l := o.LatencyMS
	_, err := fmt.Fprintf(stdout, "%d req/s for %s: %d requests, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms, codes %v, errors %d\n",
		*rate, *d, o.Requests, l.P50, l.P90, l.P99, l.Max, o.Codes, o.Errors)
	return err
}
