package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Targets, in the order they are measured.
const (
	targetDirect  = "direct"
	targetBare    = "bare"
	targetNginx   = "nginx"
	targetBulwark = "bulwark"
)

var targetOrder = []string{targetDirect, targetBare, targetNginx, targetBulwark}

// layer names the processes that make up each target's proxying layer
// (the upstream is shared and counted apart): their CPU per request is
// what the layer costs. The dev stack is Redis plus FerretDB.
var layer = map[string][]string{
	targetBare:    {"proxy"},
	targetNginx:   {"nginx"},
	targetBulwark: {"gateway", "scorer", "devstack"},
}

type bench struct {
	targets       map[string]string // name → base URL
	path          string
	clients       int
	apiClients    int
	apiRepeat     int
	apiSeed       uint64
	closedDur     time.Duration
	openDur       time.Duration
	threads       int
	connections   int
	wrk           string
	wrkScriptPath string
	dir           string
	log           io.Writer
	pids          map[string]int

	redisURL, mongoURI, mongoDB   string
	scorerMetrics, gatewayMetrics string
	adminToken                    string
	events                        *eventCounter
	recorder                      string // the scorer recorder's /calls URL
	scorerURL                     string // the scorer's base URL, for the geo check
	gatewayLog                    string // the gateway's log file

	seqs  map[string][]client
	files map[string]string
}

// results is everything a run measured; it is written as JSON.
type results struct {
	Date    string       `json:"date"`
	Machine machine      `json:"machine"`
	Setup   setup        `json:"setup"`
	LoadAvg [2]string    `json:"loadavg_start_end"` // /proc/loadavg: is something else running?
	Runs    []*runResult `json:"runs"`
	Memory  *memory      `json:"bulwark_redis_memory,omitempty"`
	Notes   []string     `json:"notes"`
}

type setup struct {
	Path           string   `json:"path"`    // the browsers, hammer and mix loads' path
	Clients        int      `json:"clients"` // the browsers load's
	API            apiSetup `json:"api_mix"`
	ClosedLoop     string   `json:"closed_loop"`
	ClosedSeconds  float64  `json:"closed_seconds"`
	OpenLoop       string   `json:"open_loop"`
	OpenSeconds    float64  `json:"open_seconds"`
	UpstreamBodyB  int      `json:"upstream_body_bytes"`
	MixAttackers   int      `json:"mix_attackers"`
	MixAttackShare float64  `json:"mix_attack_share"`
	// Where the scorer's GeoIP places one address of each API class.
	GeoCheck []string `json:"geo_check,omitempty"`
	// How refusals and scorer calls were split by class ("" when not).
	RefusalsByClass    string `json:"refusals_by_class,omitempty"`
	ScorerCallsByClass string `json:"scorer_calls_by_class,omitempty"`
}

// apiSetup states the API mix of the run (apiMix): the same seed and
// clients make the same requests, which the fingerprint confirms.
type apiSetup struct {
	Clients     int             `json:"clients"`
	Repeat      int             `json:"repeat"`
	Seed        uint64          `json:"seed"`
	Cycle       int             `json:"cycle_requests"`
	Fingerprint string          `json:"fingerprint"`
	Paths       []string        `json:"paths"`
	Classes     []apiClassSetup `json:"classes"`
}

type apiClassSetup struct {
	Name       string   `json:"name"`
	Percent    int      `json:"percent"`
	Clients    int      `json:"clients"`
	UserAgents []string `json:"user_agents"`
	Networks   string   `json:"networks"`
}

func describeAPIMix(clients, repeat int, seed uint64, seq []client) apiSetup {
	s := apiSetup{Clients: clients, Repeat: repeat, Seed: seed, Cycle: len(seq), Fingerprint: fingerprint(seq), Paths: apiPaths}
	counts := classCounts(clients)
	for i, c := range apiClasses {
		cs := apiClassSetup{Name: c.Name, Percent: c.Percent, Clients: counts[i], Networks: c.where()}
		for _, v := range c.Variants {
			cs.UserAgents = append(cs.UserAgents, v.UA)
		}
		s.Classes = append(s.Classes, cs)
	}
	return s
}

type runResult struct {
	Mode          string             `json:"mode"` // closed (wrk) or open (vegeta)
	Load          string             `json:"load"`
	Target        string             `json:"target"`
	Label         string             `json:"label,omitempty"` // why this rate, for open runs
	Rate          int                `json:"rate,omitempty"`  // offered, open runs
	Requests      int64              `json:"requests"`        // answered or failed
	Seconds       float64            `json:"seconds"`
	RPS           float64            `json:"rps"`
	OKPerSec      float64            `json:"ok_per_sec"`      // 2xx
	RefusedPerSec float64            `json:"refused_per_sec"` // 403, 429, 503
	Non2xx        int64              `json:"non_2xx"`
	Refused       int64              `json:"refused"` // 403, 429, 503, as the generator counted them
	Errors        int64              `json:"errors"`  // no answer: connect, read, write errors and timeouts
	Codes         map[string]int64   `json:"codes"`
	LatencyMS     latencyMS          `json:"latency_ms"`
	CPUMicros     map[string]float64 `json:"cpu_us_per_request"` // by process, descendants included
	LayerCPU      float64            `json:"layer_cpu_us_per_request"`
	Bulwark       *bulwarkCost       `json:"bulwark,omitempty"`
	// Bulwark runs, by client class (classOf): requests sent, refusals
	// named by the gateway's log, calls the scorer recorder saw.
	Classes map[string]*classResult `json:"classes,omitempty"`
	// Refusals the gateway's log did not name (lines it dropped, or no
	// log read): Refused minus the classes' refusals.
	Unattributed int64 `json:"refused_unattributed,omitempty"`
	LogDropped   int64 `json:"gateway_log_lines_dropped,omitempty"`
}

// classResult is one client class in one Bulwark run.
type classResult struct {
	Requests        int64            `json:"requests"`                 // sent, by the load's sequence
	Logged          int64            `json:"logged"`                   // in the gateway's log
	Refused         int64            `json:"refused"`                  // 403, 429, 503 in the gateway's log
	RefusedBy       map[string]int64 `json:"refused_by,omitempty"`     // decision/code → requests
	ScorerCalls     int64            `json:"scorer_calls"`             // through the recorder
	CallsPerRequest float64          `json:"scorer_calls_per_request"` // ScorerCalls / Requests
}

// bulwarkCost is what a Bulwark run cost its dependencies, per request.
type bulwarkCost struct {
	RedisCPUMicros float64            `json:"redis_cpu_us_per_request"`
	RedisCommands  float64            `json:"redis_commands_per_request"`
	RedisReads     float64            `json:"redis_reads_per_request"` // read events on client sockets ≈ round trips
	RedisByCommand map[string]float64 `json:"redis_commands_by_name_per_request"`
	ScorerScores   float64            `json:"scorer_scores_per_request"`
	Events         int64              `json:"events_written"`
	EventsPerSec   float64            `json:"events_per_sec"`
	Decisions      map[string]int64   `json:"decisions"` // decision/code from the gateway's metrics
	// Calls to Redis, the scorer or the upstream that failed (a timeout
	// under overload): each degraded a request (fail open).
	DependencyErrors map[string]int64 `json:"dependency_errors"`
	// How long requests waited on Redis and the scorer (from the gateway's
	// histogram: each figure is its bucket's upper bound).
	DependencyTimes map[string]depTimes `json:"dependency_times,omitempty"`
}

// depTimes is one dependency's call-time distribution over a run.
type depTimes struct {
	Calls  int64   `json:"calls"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"` // the highest non-empty bucket's bound; +Inf past the last
}

type memory struct {
	UsedMemoryDelta int64   `json:"used_memory_delta_bytes"`
	Clients         int     `json:"distinct_clients"`
	BytesPerClient  float64 `json:"bytes_per_client"`
}

// snapshot is what is read before and after a run.
type snapshot struct {
	cpu     map[string]float64
	redis   map[string]string
	scorer  map[string]float64
	gateway map[string]float64
	events  int64
	calls   map[string]int64 // the scorer recorder's, by class
	logOff  int64            // the gateway log's size
}

type pidFlag map[string]int

func (p pidFlag) String() string { return fmt.Sprint(map[string]int(p)) }
func (p pidFlag) Set(v string) error {
	name, id, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(id)
	if !ok || err != nil {
		return fmt.Errorf("want name=pid, got %q", v)
	}
	p[name] = n
	return nil
}

func durationEnv(getenv func(string) string, name string, def time.Duration) time.Duration {
	v := getenv(name)
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	return def
}

func intEnv(getenv func(string) string, name string, def int) int {
	if n, err := strconv.Atoi(getenv(name)); err == nil {
		return n
	}
	return def
}

// The API mix's defaults: 50,000 clients, each 4 times in a cycle of
// 200,000 requests, seed 1.
const (
	defaultAPIClients = 50000
	defaultAPIRepeat  = 4
	defaultAPISeed    = 1
)

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	b := &bench{targets: map[string]string{}, pids: map[string]int{}}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	for _, t := range targetOrder {
		fs.Func(t, "base URL of the "+t+" target", func(v string) error { b.targets[t] = strings.TrimRight(v, "/"); return nil })
	}
	fs.StringVar(&b.path, "path", "/api/products", "path requested")
	fs.IntVar(&b.clients, "clients", 50000, "distinct clients of the browsers load")
	fs.IntVar(&b.apiClients, "api-clients", intEnv(getenv, "BENCH_API_CLIENTS", defaultAPIClients), "distinct clients of the API mix (env BENCH_API_CLIENTS)")
	fs.IntVar(&b.apiRepeat, "api-repeat", defaultAPIRepeat, "requests per API client in one cycle of the mix's sequence")
	fs.Uint64Var(&b.apiSeed, "api-seed", uint64(intEnv(getenv, "BENCH_API_SEED", defaultAPISeed)), "the API mix's seed (env BENCH_API_SEED)")
	fs.StringVar(&b.recorder, "recorder", "", "the scorer recorder's /calls URL (loadbench recorder): scorer calls by client class")
	fs.StringVar(&b.gatewayLog, "gateway-log", "", "the gateway's log file: refusals by client class")
	fs.StringVar(&b.scorerURL, "scorer", "", "the scorer's base URL: check where its GeoIP places each API class before the loads")
	dur := durationEnv(getenv, "BENCH_DURATION", 8*time.Second)
	fs.DurationVar(&b.closedDur, "duration", dur, "length of each closed-loop run (env BENCH_DURATION)")
	fs.DurationVar(&b.openDur, "open-duration", durationEnv(getenv, "BENCH_OPEN_DURATION", dur), "length of each open-loop run (env BENCH_OPEN_DURATION)")
	fs.IntVar(&b.threads, "threads", 1, "wrk threads")
	fs.IntVar(&b.connections, "connections", 32, "wrk connections")
	fs.StringVar(&b.wrk, "wrk", "wrk", "wrk binary")
	fs.StringVar(&b.dir, "dir", "var/bench", "where the results, scripts and logs go")
	fs.Var(pidFlag(b.pids), "pid", "name=pid of a process whose CPU is measured (repeatable): proxy, nginx, gateway, scorer, devstack, upstream")
	fs.StringVar(&b.redisURL, "redis", "", "Bulwark's Redis URL")
	fs.StringVar(&b.mongoURI, "mongo", "", "Bulwark's MongoDB URI")
	fs.StringVar(&b.mongoDB, "mongo-db", "bulwark", "Bulwark's MongoDB database")
	fs.StringVar(&b.scorerMetrics, "scorer-metrics", "", "the scorer's /metrics URL")
	fs.StringVar(&b.gatewayMetrics, "gateway-metrics", "", "the gateway's admin /metrics URL (token in env BENCH_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b.adminToken = getenv("BENCH_ADMIN_TOKEN")
	if len(b.targets) == 0 {
		return errors.New("no targets: pass -direct, -bare, -nginx and/or -bulwark")
	}
	// 49.0.240.0/20 is the warm-up's.
	if maxBrowsers := 3 * 61440; b.clients < 1 || b.clients > maxBrowsers {
		return fmt.Errorf("-clients %d: want 1 to %d", b.clients, maxBrowsers)
	}
	if m := maxAPIClients(); b.apiClients < 1 || b.apiClients > m {
		return fmt.Errorf("-api-clients %d: want 1 to %d", b.apiClients, m)
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(b.dir, "loadbench.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	b.log = logf
	if b.targets[targetBulwark] != "" && b.mongoURI != "" {
		ev, closeFn, err := newEventCounter(b.mongoURI, b.mongoDB)
		if err != nil {
			return fmt.Errorf("mongo: %w", err)
		}
		defer closeFn()
		b.events = ev
	}

	b.wrkScriptPath = filepath.Join(b.dir, "loadbench.lua")
	if err := writeWrkScript(b.wrkScriptPath); err != nil {
		return err
	}
	b.seqs, b.files = map[string][]client{}, map[string]string{}
	api, err := apiMix(b.apiClients, b.apiRepeat, b.apiSeed)
	if err != nil {
		return err
	}
	b.seqs[loadAPI] = api
	for _, load := range []string{loadAPI, loadBrowsers, loadHammer, loadMix, loadWarmup} {
		if load != loadAPI {
			b.seqs[load] = sequence(load, b.clients)
		}
		b.files[load] = filepath.Join(b.dir, "clients-"+load+".tsv")
		if err := writeClients(b.files[load], b.seqs[load]); err != nil {
			return err
		}
	}

	res := &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: describeMachine(ctx, b.wrk, b.redisURL),
		Setup: setup{
			Path: b.path, Clients: b.clients,
			API:           describeAPIMix(b.apiClients, b.apiRepeat, b.apiSeed, api),
			ClosedLoop:    fmt.Sprintf("wrk -t%d -c%d (Lua: one request per client line, round robin)", b.threads, b.connections),
			ClosedSeconds: b.closedDur.Seconds(),
			OpenLoop:      "vegeta/v12 lib, fixed rate, keep-alive, exact percentiles over every request",
			OpenSeconds:   b.openDur.Seconds(), UpstreamBodyB: len(upstreamBody),
			MixAttackers: mixAttackers, MixAttackShare: 0.1,
		},
		Notes: []string{
			"cpu_us_per_request counts the process and its descendants (/proc, 10 ms ticks); the dev stack is redis-server plus FerretDB",
			"redis_reads_per_request is INFO stats total_reads_processed: read events on client sockets, about one per round trip",
			"the scorer's metrics do not tell /v1/score from /v1/score/batch calls; scorer_scores_per_request counts clients scored either way",
			"classes: requests are what the generator sent of each class (its sequence walked from the start), refusals the gateway's log lines with 403, 429 or 503 by the client's address, scorer calls what the recorder between gateway and scorer relayed by the ip of each score request",
		},
	}
	if b.gatewayLog != "" {
		res.Setup.RefusalsByClass = "the gateway's log (one line per request, its ip and status)"
	}
	if b.recorder != "" {
		res.Setup.ScorerCallsByClass = "a TCP relay between gateway and scorer (loadbench recorder) counting each score request's ip"
	}
	if b.scorerURL != "" {
		lines, err := geoCheck(ctx, b.scorerURL)
		if err != nil {
			return err
		}
		res.Setup.GeoCheck = lines
	}
	res.LoadAvg[0] = loadavg()
	printMachine(stdout, res.Machine)

	// Closed loop: the most each target answers.
	for _, t := range targetOrder {
		url := b.targets[t]
		if url == "" {
			continue
		}
		fmt.Fprintf(stdout, "closed loop: %s\n", t)
		if _, err := b.closedLoop(ctx, url+b.path, b.files[loadWarmup], time.Second); err != nil {
			return fmt.Errorf("%s warm-up: %w", t, err)
		}
		for _, load := range closedLoads {
			r, err := b.measure(ctx, "closed", load, t, 0, res)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  %-8s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %d\n", load, r.RPS, r.LatencyMS.P50, r.LatencyMS.P99, r.Non2xx)
		}
	}

	// Open loop: latency at fixed rates, half and a quarter of the bare
	// proxy's maximum (and, when Bulwark cannot sustain half of that, also
	// at half of Bulwark's). vegeta runs in this process, on the same cores
	// as every target: at half the bare maximum the machine itself may not
	// keep up (every target's latency collapses), so the quarter rate is
	// where latency is compared when it does not (kept up). The rates are
	// the bare proxy's on the API mix; at half of it the API mix goes to
	// every target, the browsers to the bare proxy and Bulwark only.
	ref := find(res.Runs, "closed", loadAPI, targetBare)
	if ref == nil {
		ref = find(res.Runs, "closed", loadAPI, "")
	}
	pair := []string{targetBare, targetBulwark}
	openRun := func(rate int, label string, all bool) error {
		for _, load := range legitLoads {
			targets := pair
			if load == loadAPI && all {
				targets = targetOrder
			}
			for _, t := range targets {
				if b.targets[t] == "" {
					continue
				}
				r, err := b.measure(ctx, "open", load, t, rate, res)
				if err != nil {
					return err
				}
				r.Label = label
				fmt.Fprintf(stdout, "open loop %d req/s: %-8s %-7s p50 %6.2f ms  p99 %7.2f ms  max %7.2f ms  non-2xx %d  errors %d\n", rate, load, t, r.LatencyMS.P50, r.LatencyMS.P99, r.LatencyMS.Max, r.Non2xx, r.Errors)
			}
		}
		return nil
	}
	rate := max(1, int(ref.RPS/2))
	if err := openRun(rate, fmt.Sprintf("half the %s maximum", ref.Target), true); err != nil {
		return err
	}
	if quarter := max(1, int(ref.RPS/4)); quarter < rate {
		if err := openRun(quarter, fmt.Sprintf("a quarter of the %s maximum", ref.Target), false); err != nil {
			return err
		}
	}
	if bw := find(res.Runs, "closed", loadAPI, targetBulwark); bw != nil && b.targets[targetBare] != "" {
		if low := int(bw.RPS / 2); low > 0 && float64(low) < 0.8*float64(rate) && float64(low) > 1.2*ref.RPS/4 {
			if err := openRun(low, "half the bulwark maximum", false); err != nil {
				return err
			}
		}
	}

	res.LoadAvg[1] = loadavg()
	var table strings.Builder
	report(&table, res)
	fmt.Fprint(stdout, "\n"+table.String())
	if err := os.WriteFile(filepath.Join(b.dir, "report.txt"), []byte(table.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	out := filepath.Join(b.dir, "results.json")
	if err := os.WriteFile(out, append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nresults: %s, %s\n", out, filepath.Join(b.dir, "report.txt"))
	if ok, verdict := legitVerdict(res); !ok {
		fmt.Fprintln(stdout, "FAIL: "+verdict)
		return errors.New("FAIL: " + verdict)
	}
	return nil
}

// closedLoads are the closed-loop loads, in order. The API mix comes first
// (its clients are new to Bulwark's Redis), then the browsers (new too:
// other networks; their run measures Redis memory per client).
var closedLoads = []string{loadAPI, loadBrowsers, loadHammer, loadMix}

func find(runs []*runResult, mode, load, target string) *runResult {
	for _, r := range runs {
		if r.Mode == mode && r.Load == load && (target == "" || r.Target == target) {
			return r
		}
	}
	return nil
}

// measure runs one load against one target, closed loop (rate 0) or open
// loop, with snapshots of the processes' CPU (and for Bulwark its
// dependencies) around it.
func (b *bench) measure(ctx context.Context, mode, load, target string, rate int, res *results) (*runResult, error) {
	isBulwark := target == targetBulwark
	before, err := b.snapshot(ctx, isBulwark, false)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: before: %w", mode, load, target, err)
	}
	url := b.targets[target] + b.path
	r := &runResult{Mode: mode, Load: load, Target: target, Rate: rate}
	if mode == "closed" {
		o, err := b.closedLoop(ctx, url, b.files[load], b.closedDur)
		if err != nil {
			return nil, err
		}
		if o.Requests == 0 {
			return nil, fmt.Errorf("%s %s %s: no answers (socket errors %v): is the target still up?", mode, load, target, o.Errors)
		}
		r.Requests, r.Seconds, r.Codes = o.Requests, float64(o.DurationUS)/1e6, o.Codes
		r.Errors = o.Errors["connect"] + o.Errors["read"] + o.Errors["write"] + o.Errors["timeout"]
		l := o.LatencyUS
		r.LatencyMS = latencyMS{P50: l["p50"] / 1000, P90: l["p90"] / 1000, P99: l["p99"] / 1000, P999: l["p999"] / 1000, Max: l["max"] / 1000, Mean: l["mean"] / 1000}
	} else {
		o := openLoop(b.targets[target], b.path, b.seqs[load], rate, b.openDur)
		r.Requests, r.Seconds, r.Codes, r.Errors, r.LatencyMS = o.Requests, o.Seconds, o.Codes, o.Errors, o.LatencyMS
	}
	var ok int64
	for code, n := range r.Codes {
		switch {
		case strings.HasPrefix(code, "2"):
			ok += n
		case code == "403" || code == "429" || code == "503":
			r.Refused += n
			r.Non2xx += n
		default:
			r.Non2xx += n
		}
	}
	if r.Seconds > 0 {
		r.RPS, r.OKPerSec, r.RefusedPerSec = float64(r.Requests)/r.Seconds, float64(ok)/r.Seconds, float64(r.Refused)/r.Seconds
	}
	after, err := b.snapshot(ctx, isBulwark, true)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: after: %w", mode, load, target, err)
	}
	per := func(d float64) float64 {
		if r.Requests == 0 {
			return 0
		}
		return d / float64(r.Requests)
	}
	r.CPUMicros = map[string]float64{}
	for name, v := range after.cpu {
		r.CPUMicros[name] = per(v-before.cpu[name]) * 1e6
	}
	for _, name := range layer[target] {
		r.LayerCPU += r.CPUMicros[name]
	}
	if isBulwark {
		r.Bulwark = b.cost(before, after, r, per)
		threads := 1 // vegeta walks the sequence from the start
		if mode == "closed" {
			threads = b.threads
		}
		if err := b.classify(r, b.seqs[load], threads, before, after); err != nil {
			return nil, fmt.Errorf("%s %s %s: %w", mode, load, target, err)
		}
		if mode == "closed" && load == loadBrowsers && res.Memory == nil {
			clients := int(min(r.Requests, int64(len(b.seqs[load]))))
			if b.threads == 1 {
				clients = distinct(b.seqs[load], r.Requests)
			}
			delta := int64(infoFloat(after.redis, "used_memory") - infoFloat(before.redis, "used_memory"))
			res.Memory = &memory{UsedMemoryDelta: delta, Clients: clients}
			if clients > 0 {
				res.Memory.BytesPerClient = float64(delta) / float64(clients)
			}
		}
	}
	res.Runs = append(res.Runs, r)
	time.Sleep(time.Second) // let connections close before the next run
	return r, nil
}

func (b *bench) snapshot(ctx context.Context, bulwark, settle bool) (*snapshot, error) {
	s := &snapshot{cpu: map[string]float64{}}
	// First, so that a target that died says so rather than failing a probe.
	for name, pid := range b.pids {
		v, err := cpuSeconds(pid)
		if err != nil {
			return nil, fmt.Errorf("%s (pid %d) stopped: see its log in %s/logs: %w", name, pid, b.dir, err)
		}
		s.cpu[name] = v
	}
	if bulwark {
		if b.events != nil {
			var err error
			if settle {
				s.events, err = b.events.settled(ctx, 10*time.Second)
			} else {
				s.events, err = b.events.count(ctx)
			}
			if err != nil {
				return nil, fmt.Errorf("count events: %w", err)
			}
		}
		if b.redisURL != "" {
			info, err := redisInfo(ctx, b.redisURL)
			if err != nil {
				return nil, err
			}
			s.redis = info
		}
		if b.gatewayLog != "" {
			off, err := logSize(ctx, b.gatewayLog, settle, 10*time.Second)
			if err != nil {
				return nil, fmt.Errorf("gateway log: %w", err)
			}
			s.logOff = off
		}
		if b.recorder != "" {
			calls, err := recorderCalls(ctx, b.recorder)
			if err != nil {
				return nil, fmt.Errorf("scorer recorder: %w", err)
			}
			s.calls = calls
		}
		if b.scorerMetrics != "" {
			m, err := scrape(ctx, b.scorerMetrics, "")
			if err != nil {
				return nil, fmt.Errorf("scorer metrics: %w", err)
			}
			s.scorer = m
		}
		if b.gatewayMetrics != "" {
			m, err := scrape(ctx, b.gatewayMetrics, b.adminToken)
			if err != nil {
				return nil, fmt.Errorf("gateway metrics: %w", err)
			}
			s.gateway = m
		}
	}
	return s, nil
}

func (b *bench) cost(before, after *snapshot, r *runResult, per func(float64) float64) *bulwarkCost {
	c := &bulwarkCost{RedisByCommand: map[string]float64{}, Decisions: map[string]int64{}, DependencyErrors: map[string]int64{}}
	if before.redis != nil {
		cpu := func(i map[string]string) float64 { return infoFloat(i, "used_cpu_user") + infoFloat(i, "used_cpu_sys") }
		c.RedisCPUMicros = per(cpu(after.redis)-cpu(before.redis)) * 1e6
		// The harness's own INFO (the one after) is one read and one call.
		c.RedisReads = per(infoFloat(after.redis, "total_reads_processed") - infoFloat(before.redis, "total_reads_processed") - 1)
		var total float64
		for k, v := range after.redis {
			name, ok := strings.CutPrefix(k, "cmdstat_")
			if !ok || name == "info" {
				continue
			}
			n, _ := strconv.ParseFloat(v, 64)
			d := n - infoFloat(before.redis, k)
			if d > 0 {
				total += d
				c.RedisByCommand[name] = per(d)
			}
		}
		c.RedisCommands = per(total)
	}
	if before.scorer != nil {
		c.ScorerScores = per(sumMetric(after.scorer, "bulwark_scorer_scores_total") - sumMetric(before.scorer, "bulwark_scorer_scores_total"))
	}
	if before.gateway != nil {
		for k, v := range after.gateway {
			d := int64(v - before.gateway[k])
			switch {
			case d <= 0:
			case strings.HasPrefix(k, "bulwark_gateway_requests_total{"):
				c.Decisions[label(k, "decision")+"/"+label(k, "code")] += d
			case strings.HasPrefix(k, "bulwark_gateway_dependency_errors_total{"):
				c.DependencyErrors[label(k, "dependency")] += d
			}
		}
	}
	if before.gateway != nil {
		c.DependencyTimes = histogramTimes(before.gateway, after.gateway, "bulwark_gateway_dependency_duration_seconds", "dependency")
	}
	c.Events = after.events - before.events
	if r.Seconds > 0 {
		c.EventsPerSec = float64(c.Events) / r.Seconds
	}
	return c
}

// decisions renders a run's decisions, most frequent first.
func decisions(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// classify splits a Bulwark run by client class: the requests the generator
// sent of each (threads walking seq as the generator does), the refusals
// the gateway's log names, the scorer calls the recorder relayed.
func (b *bench) classify(r *runResult, seq []client, threads int, before, after *snapshot) error {
	r.Classes = map[string]*classResult{}
	get := func(class string) *classResult {
		c := r.Classes[class]
		if c == nil {
			c = &classResult{}
			r.Classes[class] = c
		}
		return c
	}
	for class, n := range sentByClass(seq, r.Requests, threads) {
		get(class).Requests = n
	}
	if before.calls != nil && after.calls != nil {
		for class, n := range after.calls {
			if d := n - before.calls[class]; d > 0 {
				get(class).ScorerCalls = d
			}
		}
	}
	var named int64
	if b.gatewayLog != "" {
		t, err := tallyLogRange(b.gatewayLog, before.logOff, after.logOff)
		if err != nil {
			return fmt.Errorf("gateway log: %w", err)
		}
		for class, n := range t.Requests {
			get(class).Logged = n
		}
		for class, n := range t.Refused {
			c := get(class)
			c.Refused, c.RefusedBy = n, t.Decisions[class]
			named += n
		}
		r.LogDropped = t.Dropped
	}
	r.Unattributed = max(0, r.Refused-named)
	for _, c := range r.Classes {
		if c.Requests > 0 {
			c.CallsPerRequest = float64(c.ScorerCalls) / float64(c.Requests)
		}
	}
	return nil
}
