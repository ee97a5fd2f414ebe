package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Which client a refusal went to is read from the gateway's own log: it
// writes one JSON line per request ("msg":"request", with "status", "ip" and
// "decision"), buffered and flushed every 100 ms (package logbuf). wrk cannot
// tell which request an answer belongs to, and the log costs the requests
// nothing they did not already pay. A line the gateway dropped (its buffer
// full) shows as a refusal the log does not name: the generators' own count
// of refused answers is the total.

// refusedCode is a gateway refusal: 403 (ban, block, deny list), 429
// (throttle, rate limit) and 503 (fail closed, overload).
func refusedCode(status int) bool { return status == 403 || status == 429 || status == 503 }

// logTally is what a stretch of the gateway's log says, by client class.
type logTally struct {
	Requests  map[string]int64            // requests logged
	Refused   map[string]int64            // of which refused
	Decisions map[string]map[string]int64 // class → "decision/code" → refused requests
	Dropped   int64                       // lines the gateway reported dropping
}

var (
	logRequest = []byte(`"msg":"request",`)
	logDropped = []byte(`"msg":"log lines dropped`)
)

// tallyLog reads gateway log lines from r.
func tallyLog(r io.Reader) (logTally, error) {
	t := logTally{Requests: map[string]int64{}, Refused: map[string]int64{}, Decisions: map[string]map[string]int64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, logDropped) {
			n, _ := strconv.ParseInt(string(jsonNumber(line, "dropped")), 10, 64)
			t.Dropped += n
			continue
		}
		if !bytes.Contains(line, logRequest) {
			continue
		}
		class := classOf(string(jsonString(line, "ip")))
		t.Requests[class]++
		status, _ := strconv.Atoi(string(jsonNumber(line, "status")))
		if !refusedCode(status) {
			continue
		}
		t.Refused[class]++
		if t.Decisions[class] == nil {
			t.Decisions[class] = map[string]int64{}
		}
		t.Decisions[class][fmt.Sprintf("%s/%d", jsonString(line, "decision"), status)]++
	}
	return t, sc.Err()
}

// jsonString is the value of a top-level string field of a one-line JSON
// object written by slog (no escapes in the fields read here).
func jsonString(line []byte, key string) []byte {
	k := []byte(`"` + key + `":"`)
	i := bytes.Index(line, k)
	if i < 0 {
		return nil
	}
	rest := line[i+len(k):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// jsonNumber is the value of a numeric field of a one-line JSON object.
func jsonNumber(line []byte, key string) []byte {
	k := []byte(`"` + key + `":`)
	i := bytes.Index(line, k)
	if i < 0 {
		return nil
	}
	rest := line[i+len(k):]
	j := 0
	for j < len(rest) && (rest[j] == '-' || rest[j] == '.' || rest[j] >= '0' && rest[j] <= '9') {
		j++
	}
	return rest[:j]
}

// logSize is the log's length now, once it has stopped growing (the
// gateway has written out what the run's requests logged), for at most max.
func logSize(ctx context.Context, path string, settle bool, max time.Duration) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if !settle {
		return size, nil
	}
	deadline := time.Now().Add(max)
	still := 0
	for still < 2 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		st, err := os.Stat(path)
		if err != nil {
			return 0, err
		}
		if st.Size() == size {
			still++
		} else {
			size, still = st.Size(), 0
		}
	}
	return size, nil
}

// tallyLogRange tallies the log's bytes from off to end.
func tallyLogRange(path string, off, end int64) (logTally, error) {
	f, err := os.Open(path)
	if err != nil {
		return logTally{}, err
	}
	defer f.Close()
	return tallyLog(io.NewSectionReader(f, off, end-off))
}
