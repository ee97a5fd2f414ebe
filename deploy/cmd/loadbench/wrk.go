package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkScript makes wrk send one request per line of the clients file (args[1])
// in order, round robin, each thread starting at its own offset (args[2] is
// the number of threads). A line is the client's address, user agent,
// Accept, Accept-Language and path, tab-separated (writeClients); an empty
// header is not sent, an empty path is the URL's. The requests are
// formatted once in init, so the per-request cost is a table lookup. Each
// thread counts statuses; done prints everything as one JSON line.
const wrkScript = `
local reqs, n, i = {}, 0, 0
codes = {}
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local ip, ua, accept, lang, path = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
    local h = {["X-Forwarded-For"] = ip, ["User-Agent"] = ua}
    if accept ~= "" then h["Accept"] = accept end
    if lang ~= "" then h["Accept-Language"] = lang end
    if path == "" then path = wrk.path end
    n = n + 1
    reqs[n] = wrk.format("GET", path, h)
  end
  i = (tid or 0) * math.floor(n / tonumber(args[2]))
end

function request()
  i = i % n + 1
  return reqs[i]
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
  local e = summary.errors
  io.write(string.format('LOADBENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},"codes":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")))
end
`

// wrkOutput is what the script's done prints.
type wrkOutput struct {
	Requests   int64              `json:"requests"`
	DurationUS int64              `json:"duration_us"`
	Bytes      int64              `json:"bytes"`
	Errors     map[string]int64   `json:"errors"`
	LatencyUS  map[string]float64 `json:"latency_us"`
	Codes      map[string]int64   `json:"codes"`
}

// closedLoop runs wrk against url with the clients file and returns its
// measurements.
func (b *bench) closedLoop(ctx context.Context, url, clientsFile string, d time.Duration) (*wrkOutput, error) {
	args := []string{
		"-t", strconv.Itoa(b.threads), "-c", strconv.Itoa(b.connections),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Round(time.Second).Seconds()))), "--timeout", "5s",
		"-s", b.wrkScriptPath, url, "--", clientsFile, strconv.Itoa(b.threads),
	}
	cmd := exec.CommandContext(ctx, b.wrk, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	if b.log != nil {
		fmt.Fprintf(b.log, "$ %s %s\n%s%s\n", b.wrk, strings.Join(args, " "), out.String(), errb.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "LOADBENCH "); ok {
			var o wrkOutput
			if err := json.Unmarshal([]byte(line), &o); err != nil {
				return nil, fmt.Errorf("wrk output %q: %w", line, err)
			}
			return &o, nil
		}
	}
	return nil, fmt.Errorf("wrk printed no results: %s", out.String())
}

func writeWrkScript(path string) error {
	return os.WriteFile(path, []byte(wrkScript), 0o644)
}
