package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// table prints rows with the first `left` columns aligned left and the rest
// right, two spaces apart.
func table(w io.Writer, left int, rows [][]string) {
	width := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func signed(v float64) string { return fmt.Sprintf("%+.2f", v) }

// report renders the results: the closed-loop table with ratios against the
// same run's bare proxy and nginx, the open-loop latencies with Bulwark's
// added latency, what Bulwark's requests cost, and the budget of
// DESIGN.md ("Budget per request") checked against them.
func report(w io.Writer, res *results) {
	m := res.Machine
	fmt.Fprintf(w, "Bulwark load benchmark, %s\n", res.Date)
	printMachine(w, m)
	fmt.Fprintf(w, "load average at start %s, at end %s\n", res.LoadAvg[0], res.LoadAvg[1])
	s := res.Setup
	fmt.Fprintf(w, "GET %s, upstream answers %d bytes of JSON; clients in X-Forwarded-For (legit: %d browsers; hammer: 1 curl; mix: 90%% legit + 10%% from %d tool addresses)\n\n",
		s.Path, s.UpstreamBodyB, s.Clients, s.MixAttackers)

	fmt.Fprintf(w, "Closed loop: %s, %.0fs per run\n", s.ClosedLoop, s.ClosedSeconds)
	rows := [][]string{{"load", "target", "req/s", "p50 ms", "p99 ms", "2xx/s", "refused/s", "non-2xx", "errors", "layer cpu µs/req", "vs bare", "vs nginx"}}
	for _, load := range []string{loadLegit, loadHammer, loadMix} {
		bare, ngx := find(res.Runs, "closed", load, targetBare), find(res.Runs, "closed", load, targetNginx)
		for _, r := range res.Runs {
			if r.Mode != "closed" || r.Load != load {
				continue
			}
			vsBare, vsNginx := "", ""
			// For the hammer, a protection's worth is the rate it refuses
			// at, against the rate the bare proxy serves the same client.
			val := r.RPS
			if load == loadHammer && r.Target != targetBare && r.Target != targetDirect {
				val = r.RefusedPerSec
			}
			if bare != nil && r != bare {
				ref := bare.RPS
				if load == loadHammer {
					ref = bare.OKPerSec
				}
				vsBare = ratio(val, ref)
			}
			if ngx != nil && r != ngx && r.Target != targetDirect && r.Target != targetBare {
				ref := ngx.RPS
				if load == loadHammer {
					ref = ngx.RefusedPerSec
				}
				vsNginx = ratio(val, ref)
			}
			cpu := "-"
			if _, ok := layer[r.Target]; ok {
				cpu = f1(r.LayerCPU)
			}
			rows = append(rows, []string{load, r.Target, f0(r.RPS), f2(r.LatencyMS.P50), f2(r.LatencyMS.P99),
				f0(r.OKPerSec), f0(r.RefusedPerSec), fmt.Sprint(r.Non2xx), fmt.Sprint(r.Errors), cpu, vsBare, vsNginx})
		}
	}
	table(w, 2, rows)
	fmt.Fprintln(w, "hammer: bulwark's and nginx's ratios are their refused/s against the bare proxy's 2xx/s to the same client (and against nginx's refused/s)")

	fmt.Fprintf(w, "\nOpen loop (legit): %s, %.0fs per run\n", s.OpenLoop, s.OpenSeconds)
	rows = [][]string{{"rate", "target", "2xx/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "non-2xx", "errors", "layer cpu µs/req", "why this rate"}}
	for _, r := range res.Runs {
		if r.Mode != "open" {
			continue
		}
		cpu := "-"
		if _, ok := layer[r.Target]; ok {
			cpu = f1(r.LayerCPU)
		}
		rows = append(rows, []string{fmt.Sprint(r.Rate), r.Target, f0(r.OKPerSec), f2(r.LatencyMS.P50), f2(r.LatencyMS.P90),
			f2(r.LatencyMS.P99), f2(r.LatencyMS.Max), fmt.Sprint(r.Non2xx), fmt.Sprint(r.Errors), cpu, r.Label})
	}
	table(w, 0, rows)
	for _, r := range res.Runs {
		if r.Mode != "open" || r.Target != targetBulwark {
			continue
		}
		bare := findRate(res.Runs, targetBare, r.Rate)
		if bare == nil {
			continue
		}
		fmt.Fprintf(w, "added latency of bulwark over bare at %d req/s: p50 %s ms, p99 %s ms\n", r.Rate,
			signed(r.LatencyMS.P50-bare.LatencyMS.P50), signed(r.LatencyMS.P99-bare.LatencyMS.P99))
	}

	fmt.Fprintln(w, "\nBulwark, per request (Redis from INFO; scorer from its /metrics; events counted in MongoDB)")
	rows = [][]string{{"run", "redis cpu µs", "redis cmds", "redis reads", "scores", "events/s", "degraded", "gateway decisions/code"}}
	for _, r := range res.Runs {
		if r.Bulwark == nil {
			continue
		}
		name := runName(r)
		c := r.Bulwark
		rows = append(rows, []string{name, f1(c.RedisCPUMicros), f2(c.RedisCommands), f2(c.RedisReads), f2(c.ScorerScores), f0(c.EventsPerSec), degraded(c.DependencyErrors), decisions(c.Decisions)})
	}
	table(w, 1, rows)
	fmt.Fprintln(w, "redis cmds counts the commands run inside Lua scripts too; redis reads (read events on client sockets) is about one per round trip, and includes the gateway's background loops")
	fmt.Fprintln(w, "degraded: failed calls to a dependency (a timeout under overload), each answered fail-open without it")
	dependencyTimes(w, res)
	if mem := res.Memory; mem != nil {
		fmt.Fprintf(w, "redis memory per tracked client: %.0f bytes (used_memory %+d over %d distinct clients, closed legit run)\n", mem.BytesPerClient, mem.UsedMemoryDelta, mem.Clients)
	}
	if bw := find(res.Runs, "closed", loadLegit, targetBulwark); bw != nil && bw.Bulwark != nil {
		fmt.Fprintf(w, "redis commands per request, closed legit: %s\n", perCommand(bw.Bulwark.RedisByCommand))
	}

	budget(w, res)
}

// dependencyTimes prints how long Bulwark's requests waited on Redis and the
// scorer in each run: whether the configured timeouts fit the load.
func dependencyTimes(w io.Writer, res *results) {
	rows := [][]string{{"run", "dependency", "calls", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "failed"}}
	for _, r := range res.Runs {
		if r.Bulwark == nil {
			continue
		}
		name := runName(r)
		for _, dep := range []string{"redis", "scorer"} {
			d, ok := r.Bulwark.DependencyTimes[dep]
			if !ok {
				continue
			}
			rows = append(rows, []string{name, dep, fmt.Sprint(d.Calls), bucketMS(d.P50MS), bucketMS(d.P99MS), bucketMS(d.P999MS), bucketMS(d.MaxMS), fmt.Sprint(r.Bulwark.DependencyErrors[dep])})
		}
	}
	if len(rows) == 1 {
		return
	}
	fmt.Fprintln(w, "\nTime the request path waited on each dependency (the gateway's histogram: each figure is a bucket's upper bound)")
	table(w, 1, rows)
}

// runName is a run's row label: "closed legit", "open legit @2064".
func runName(r *runResult) string {
	if r.Mode == "open" {
		return fmt.Sprintf("%s %s @%d", r.Mode, r.Load, r.Rate)
	}
	return r.Mode + " " + r.Load
}

func bucketMS(v float64) string {
	if v < 0 {
		return ">1000"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// halfLoad is Bulwark's open-loop run at the highest rate asked: half the
// bare proxy's maximum.
func halfLoad(runs []*runResult) *runResult {
	var best *runResult
	for _, r := range runs {
		if r.Mode == "open" && r.Target == targetBulwark && (best == nil || r.Rate > best.Rate) {
			best = r
		}
	}
	return best
}

// keptUp reports whether an open-loop run answered every request at the
// rate asked, with a p99 under 50 ms.
func keptUp(r *runResult) bool {
	return r.Errors == 0 && r.OKPerSec+r.RefusedPerSec >= 0.98*float64(r.Rate) && r.LatencyMS.P99 < 50
}

func findRate(runs []*runResult, target string, rate int) *runResult {
	for _, r := range runs {
		if r.Mode == "open" && r.Target == target && r.Rate == rate {
			return r
		}
	}
	return nil
}

func perCommand(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	return keys
}

// budget checks DESIGN.md's "Budget per request" against the run.
func budget(w io.Writer, res *results) {
	bw, bare := find(res.Runs, "closed", loadLegit, targetBulwark), find(res.Runs, "closed", loadLegit, targetBare)
	if bw == nil || bare == nil {
		return
	}
	fmt.Fprintln(w, "\nBudget (DESIGN.md \"Budget per request\")")
	rows := [][]string{{"claim", "target", "measured", ""}}
	check := func(claim, target, measured string, ok bool) {
		verdict := "MISS"
		if ok {
			verdict = "ok"
		}
		rows = append(rows, []string{claim, target, measured, verdict})
	}
	check("throughput vs bare proxy (closed, legit)", ">= 0.80x", ratio(bw.RPS, bare.RPS), bw.RPS >= 0.8*bare.RPS)
	// Added latency at the highest rate where the bare proxy kept up (every
	// request answered at the rate asked, p99 under 50 ms): above it the
	// machine, not the gateway, sets the latency.
	var open, base *runResult
	for _, r := range res.Runs {
		if r.Mode != "open" || r.Target != targetBulwark || (open != nil && r.Rate < open.Rate) {
			continue
		}
		if ob := findRate(res.Runs, targetBare, r.Rate); ob != nil && keptUp(ob) {
			open, base = r, ob
		}
	}
	if open != nil {
		d := open.LatencyMS.P50 - base.LatencyMS.P50
		check(fmt.Sprintf("added latency p50 (open, %d req/s)", open.Rate), "<= 0.30 ms", signed(d)+" ms", d <= 0.3 && keptUp(open))
		d99 := open.LatencyMS.P99 - base.LatencyMS.P99
		check(fmt.Sprintf("added latency p99 (open, %d req/s)", open.Rate), "<= 2.00 ms", signed(d99)+" ms", d99 <= 2 && keptUp(open))
	} else {
		check("added latency p50 (open)", "<= 0.30 ms", "n/a: the bare proxy kept up at no rate", false)
	}
	if c := bw.Bulwark; c != nil {
		// 5% for the background loops (stats flush, list refresh, events).
		check("redis round trips per request (reads)", "1", f2(c.RedisReads), c.RedisReads <= 1.05)
		check("redis cpu per request", "<= 10 µs", f1(c.RedisCPUMicros)+" µs", c.RedisCPUMicros <= 10)
	}
	if mem := res.Memory; mem != nil {
		check("redis memory per tracked client", "<= 200 B", f0(mem.BytesPerClient)+" B", mem.BytesPerClient <= 200)
	}
	if h := halfLoad(res.Runs); h != nil && h.Bulwark != nil {
		n := h.Bulwark.DependencyErrors["redis"] + h.Bulwark.DependencyErrors["scorer"]
		check(fmt.Sprintf("redis and scorer timeouts (open, %d req/s)", h.Rate), "0", fmt.Sprint(n), n == 0)
	}
	hb, hbare := find(res.Runs, "closed", loadHammer, targetBulwark), find(res.Runs, "closed", loadHammer, targetBare)
	if hb != nil && hbare != nil {
		check("hammer: refusals/s vs bare proxy's 2xx/s", ">= 1.00x", ratio(hb.RefusedPerSec, hbare.OKPerSec), hb.RefusedPerSec >= hbare.OKPerSec)
	}
	table(w, 1, rows)
}

func degraded(m map[string]int64) string {
	var n int64
	var parts []string
	for k, v := range m {
		n += v
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	if n == 0 {
		return "0"
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
