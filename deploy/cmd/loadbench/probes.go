package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// redisInfo sends INFO to the Redis at rawURL (redis://host:port/db) over
// one short connection and returns its fields; commandstats lines become
// "cmdstat_<name>" with the value of calls. Plain RESP: the harness needs
// no Redis client for one command.
func redisInfo(ctx context.Context, rawURL string) (map[string]string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if pw, ok := u.User.Password(); ok {
		fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(pw), pw)
	}
	if _, err := io.WriteString(conn, "*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n"); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	r := bufio.NewReader(conn)
	var body []byte
	for body == nil {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		switch line[0] {
		case '+': // AUTH's OK
		case '-':
			return nil, fmt.Errorf("redis: %s", strings.TrimSpace(line))
		case '$':
			n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
			if err != nil || n < 0 {
				return nil, fmt.Errorf("redis: bad reply %q", line)
			}
			body = make([]byte, n+2)
			if _, err := io.ReadFull(r, body); err != nil {
				return nil, fmt.Errorf("redis: %w", err)
			}
		default:
			return nil, fmt.Errorf("redis: unexpected reply %q", line)
		}
	}
	info := map[string]string{}
	for _, line := range strings.Split(string(body), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(k, "cmdstat_") {
			// calls=12,usec=34,...
			calls, _, _ := strings.Cut(v, ",")
			v = strings.TrimPrefix(calls, "calls=")
		}
		info[k] = v
	}
	return info, nil
}

func infoFloat(info map[string]string, k string) float64 {
	f, _ := strconv.ParseFloat(info[k], 64)
	return f
}

// scrape fetches a Prometheus text page and returns each sample by its
// full name with labels ("name{a=\"b\"}").
func scrape(ctx context.Context, rawURL, token string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// sumMetric adds the samples of one metric name, over all label values.
func sumMetric(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// label returns the value of label l in a sample key.
func label(key, l string) string {
	_, rest, ok := strings.Cut(key, l+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// eventCounter counts the documents in bulwark.events.
type eventCounter struct {
	coll *mongo.Collection
}

func newEventCounter(uri, db string) (*eventCounter, func(), error) {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, nil, err
	}
	closeFn := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	}
	return &eventCounter{coll: c.Database(db).Collection("events")}, closeFn, nil
}

func (e *eventCounter) count(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return e.coll.CountDocuments(ctx, struct{}{})
}

// settled counts the events until the count holds still (the gateway writes
// them in batches, asynchronously), for at most max.
func (e *eventCounter) settled(ctx context.Context, max time.Duration) (int64, error) {
	deadline := time.Now().Add(max)
	last, err := e.count(ctx)
	if err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		n, err := e.count(ctx)
		if err != nil {
			return 0, err
		}
		if n == last {
			return n, nil
		}
		last = n
	}
	return last, nil
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTicks = 100

// cpuSeconds is the user+system CPU time of pid and all its descendants.
func cpuSeconds(pid int) (float64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	type proc struct {
		ppid  int
		ticks float64
	}
	procs := map[int]proc{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces; cut at its ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		procs[p] = proc{ppid: ppid, ticks: ut + st}
	}
	if _, ok := procs[pid]; !ok {
		return 0, errors.New("process " + strconv.Itoa(pid) + " is gone")
	}
	var total float64
	for p, pr := range procs {
		for q := p; q > 1; q = procs[q].ppid {
			if q == pid {
				total += pr.ticks
				break
			}
			if _, ok := procs[q]; !ok {
				break
			}
		}
	}
	return total / clockTicks, nil
}

// boundMS converts a bucket bound to milliseconds; past the last bound (+Inf)
// is -1, which JSON can carry.
func boundMS(le float64) float64 {
	if math.IsInf(le, 1) {
		return -1
	}
	return le * 1000
}

// histogramTimes reads a Prometheus histogram's growth between two scrapes,
// one distribution per value of label by, in milliseconds. A quantile is the
// upper bound of the bucket it falls in; -1 is past the last bound.
func histogramTimes(before, after map[string]float64, name, by string) map[string]depTimes {
	type bucket struct {
		le float64
		n  float64
	}
	buckets := map[string][]bucket{}
	for k, v := range after {
		if !strings.HasPrefix(k, name+"_bucket{") {
			continue
		}
		le, err := strconv.ParseFloat(label(k, "le"), 64)
		if err != nil {
			continue
		}
		key := label(k, by)
		buckets[key] = append(buckets[key], bucket{le, v - before[k]})
	}
	out := map[string]depTimes{}
	for key, bs := range buckets {
		sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
		total := bs[len(bs)-1].n // +Inf: every call
		if total <= 0 {
			continue
		}
		q := func(p float64) float64 {
			for _, b := range bs {
				if b.n >= p*total {
					return boundMS(b.le)
				}
			}
			return -1
		}
		d := depTimes{Calls: int64(total), P50MS: q(0.5), P99MS: q(0.99), P999MS: q(0.999)}
		prev := 0.0
		for _, b := range bs {
			if b.n > prev {
				d.MaxMS = boundMS(b.le)
			}
			prev = b.n
		}
		out[key] = d
	}
	return out
}
