package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func requireRedisServer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if _, ci := os.LookupEnv("CI"); !ci {
			t.Skipf("redis-server not on PATH: %v", err)
		}
		t.Fatalf("redis-server not on PATH (required when CI is set): %v", err)
	}
}

func TestRun(t *testing.T) {
	requireRedisServer(t)

	envFile := filepath.Join(t.TempDir(), "devstack.env")
	var stdout, stderr lockedBuffer

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-redis-port", "0", "-mongo-port", "0", "-env-file", envFile}, &stdout, &stderr)
	}()

	env := waitEnvFile(t, envFile, errc, &stderr)

	redisURL, err := url.Parse(env[redisURLKey])
	if err != nil || redisURL.Scheme != "redis" || redisURL.Hostname() != loopback || redisURL.Path != "/0" {
		t.Fatalf("bad %s %q (%v)", redisURLKey, env[redisURLKey], err)
	}
	mongoURI, err := url.Parse(env[mongoURIKey])
	if err != nil || mongoURI.Scheme != "mongodb" || mongoURI.Hostname() != loopback {
		t.Fatalf("bad %s %q (%v)", mongoURIKey, env[mongoURIKey], err)
	}
	if redisURL.Port() == "6379" {
		t.Fatalf("devstack must not use the default Redis port: %s", redisURL)
	}

	// Stdout carries exactly the same two lines as the env file.
	want := redisURLKey + "=" + env[redisURLKey] + "\n" + mongoURIKey + "=" + env[mongoURIKey] + "\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}

	if err := ping(context.Background(), redisURL.Host); err != nil {
		t.Errorf("redis PING: %v", err)
	}

	conn, err := net.DialTimeout("tcp", mongoURI.Host, 5*time.Second)
	if err != nil {
		t.Errorf("dial mongo: %v", err)
	} else {
		conn.Close()
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return after cancel\nstderr:\n%s", stderr.String())
	}

	if conn, err := net.DialTimeout("tcp", redisURL.Host, time.Second); err == nil {
		conn.Close()
		t.Errorf("redis port %s still open after shutdown", redisURL.Host)
	}
	if conn, err := net.DialTimeout("tcp", mongoURI.Host, time.Second); err == nil {
		conn.Close()
		t.Errorf("mongo port %s still open after shutdown", mongoURI.Host)
	}
	if _, err := os.Stat(envFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("env file not removed: stat err = %v", err)
	}
}

// waitEnvFile waits for run to write the env file and parses it.
func waitEnvFile(t *testing.T, path string, errc <-chan error, stderr *lockedBuffer) map[string]string {
	t.Helper()

	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			env := map[string]string{}
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				k, v, ok := strings.Cut(sc.Text(), "=")
				if !ok {
					t.Fatalf("bad env line %q", sc.Text())
				}
				env[k] = v
			}
			if len(env) != 2 {
				t.Fatalf("env file has %d entries, want 2:\n%s", len(env), data)
			}
			return env
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("reading env file: %v", err)
		}

		select {
		case err := <-errc:
			t.Fatalf("run returned before the env file appeared: %v\nstderr:\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("env file %s did not appear\nstderr:\n%s", path, stderr.String())
		case <-tick.C:
		}
	}
}

func TestRunRejectsBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	var stdout, stderr lockedBuffer
	err = run(context.Background(), []string{"-redis-port", strconv.Itoa(port)}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("run with busy port: err = %v, want 'not available'", err)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q, want empty", stdout.String())
	}
}

func TestRunBadFlags(t *testing.T) {
	var stdout, stderr lockedBuffer
	for _, args := range [][]string{
		{"-redis-port", "70000"},
		{"-no-such-flag"},
		{"extra"},
	} {
		err := run(context.Background(), args, &stdout, &stderr)
		if !errors.As(err, new(usageError)) {
			t.Errorf("run(%q) = %v, want usageError", args, err)
		}
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q, want empty", stdout.String())
	}
}

// countedValue counts how often the logger formats it.
type countedValue struct{ n *int }

func (v countedValue) LogValue() slog.Value { *v.n++; return slog.StringValue("doc") }

// FerretDB attaches every SQL query's arguments with Logger.With before a
// Debug call that is disabled: they must not be formatted unless written.
func TestFerretLoggerFormatsOnlyWhatItWrites(t *testing.T) {
	var buf bytes.Buffer
	log := newFerretLogger(&buf, slog.LevelWarn)
	n := 0
	log.With("args", countedValue{&n}).Debug("query")
	if n != 0 || buf.Len() != 0 {
		t.Fatalf("a disabled record formatted its attributes %d times and wrote %q", n, buf.String())
	}
	log.WithGroup("sql").With("args", countedValue{&n}).Error("failed", "code", 1)
	if n != 1 {
		t.Fatalf("formatted %d times, want once", n)
	}
	if got := buf.String(); !strings.Contains(got, "msg=failed component=ferretdb sql.args=doc sql.code=1") {
		t.Fatalf("record = %q", got)
	}
}

// With -dir, Redis keeps its data in an append-only file there: what make
// run wrote (bans, login locks, keys) is back after a restart. Without it
// nothing is kept (TestRun).
func TestRunKeepsRedisDataInDir(t *testing.T) {
	requireRedisServer(t)
	dir := t.TempDir()
	start := func() (string, func()) {
		envFile := filepath.Join(t.TempDir(), "devstack.env")
		var stdout, stderr lockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, []string{"-dir", dir, "-env-file", envFile}, &stdout, &stderr)
		}()
		env := waitEnvFile(t, envFile, errc, &stderr)
		u, err := url.Parse(env[redisURLKey])
		if err != nil {
			t.Fatal(err)
		}
		return u.Host, func() {
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
			}
		}
	}
	ctx := context.Background()
	addr, stop := start()
	reply, err := redisCommand(ctx, addr, "SET bw:{198.51.100.1}:ban score PX 600000\r\n", readLine)
	if err != nil || reply != "+OK" {
		t.Fatalf("SET: %q %v", reply, err)
	}
	reply, err = redisCommand(ctx, addr, "CONFIG GET appendfsync\r\n", readAll)
	if err != nil || !strings.Contains(reply, "everysec") {
		t.Errorf("CONFIG GET appendfsync: %q %v", reply, err)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, "redis", "appendonlydir")); err != nil {
		t.Fatalf("no append-only file: %v", err)
	}

	addr, stop = start()
	defer stop()
	ban, err := redisCommand(ctx, addr, "GET bw:{198.51.100.1}:ban\r\n", readBulk)
	if err != nil || ban != "score" {
		t.Errorf("after a restart: GET = %q, %v; want the ban", ban, err)
	}
}

func readLine(r *bufio.Reader) (string, error) {
	l, err := r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// readAll reads what arrives within the connection's deadline.
func readAll(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		b.WriteString(l)
		if err != nil || r.Buffered() == 0 {
			return b.String(), nil
		}
	}
}
