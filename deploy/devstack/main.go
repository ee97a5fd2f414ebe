// Command devstack starts a throwaway Redis server (a redis-server child
// process) and an embedded FerretDB (MongoDB wire protocol, SQLite backend)
// on 127.0.0.1 for Bulwark tests and local runs.
//
// Once both servers answer, it prints
//
//	BULWARK_TEST_REDIS_URL=redis://127.0.0.1:<port>/0
//	BULWARK_TEST_MONGO_URI=mongodb://127.0.0.1:<port>/
//
// to stdout (and atomically to -env-file, if given), then runs until
// SIGINT/SIGTERM, when it stops both servers and removes its temporary
// files and the env file. With -dir both keep their data there across runs
// (make run): FerretDB's in DIR/ferretdb/, Redis's in an append-only file
// in DIR/redis/, as the recommended deployment keeps it.
//
// Usage:
//
//	go run ./deploy/devstack [-redis-port N] [-mongo-port N] [-dir DIR] [-env-file PATH]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	redisURLKey = "BULWARK_TEST_REDIS_URL"
	mongoURIKey = "BULWARK_TEST_MONGO_URI"

	// startTimeout bounds how long each server may take to become ready.
	startTimeout = 30 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()

	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "devstack: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "devstack: %v\n", err)
		os.Exit(1)
	}
}

// usageError reports invalid command-line arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

type config struct {
	redisPort int
	mongoPort int
	dir       string
	envFile   string
	mongoLog  slog.Level
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	var c config

	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.redisPort, "redis-port", 0, "TCP port for redis-server on 127.0.0.1 (0 = pick a free one)")
	fs.IntVar(&c.mongoPort, "mongo-port", 0, "TCP port for FerretDB on 127.0.0.1 (0 = pick a free one)")
	fs.StringVar(&c.dir, "dir", "", "keep FerretDB data in `DIR`/ferretdb/ and Redis's append-only file in DIR/redis/ (default: temporary directories removed on exit, no Redis persistence)")
	fs.StringVar(&c.envFile, "env-file", "", "once both servers are ready, atomically write the env lines to `PATH` (removed on exit)")
	c.mongoLog = slog.LevelWarn
	fs.TextVar(&c.mongoLog, "mongo-log-level", &c.mongoLog, "FerretDB log `level` on stderr (DEBUG, INFO, WARN, ERROR); at WARN and above, known noise is dropped")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: devstack [flags]\n\nStarts redis-server and an embedded FerretDB on 127.0.0.1 until SIGINT/SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected arguments: %q", fs.Args())}
	}
	for name, p := range map[string]int{"redis-port": c.redisPort, "mongo-port": c.mongoPort} {
		if p < 0 || p > 65535 {
			return nil, usageError{fmt.Errorf("-%s: %d is not a valid port", name, p)}
		}
	}
	if c.redisPort != 0 && c.redisPort == c.mongoPort {
		return nil, usageError{fmt.Errorf("-redis-port and -mongo-port are both %d", c.redisPort)}
	}

	return &c, nil
}

// run starts both servers, reports their addresses and blocks until ctx is
// done or one of the servers dies. Everything it started is stopped and
// removed before it returns.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	stderr = &syncWriter{w: stderr}

	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}

	if c.envFile != "" {
		if c.envFile, err = filepath.Abs(c.envFile); err != nil {
			return fmt.Errorf("env file: %w", err)
		}
		// A stale file from a crashed run would tell pollers we are ready.
		if err = os.Remove(c.envFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale env file: %w", err)
		}
	}

	// Explicit ports are checked up front so that we never start a server
	// next to (or talk to) something that already listens there.
	for _, p := range []int{c.redisPort, c.mongoPort} {
		if p != 0 {
			if err = checkPortFree(p); err != nil {
				return err
			}
		}
	}

	startCtx, cancelStart := context.WithTimeout(ctx, startTimeout)
	defer cancelStart()

	redisDir := ""
	if c.dir != "" {
		// Absolute: redis-server runs in it and reads --dir from there.
		if redisDir, err = filepath.Abs(filepath.Join(c.dir, "redis")); err != nil {
			return fmt.Errorf("redis data dir: %w", err)
		}
	}
	rs, err := startRedis(startCtx, c.redisPort, c.mongoPort, redisDir, stderr)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer func() {
		if stopErr := rs.stop(stderr); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping redis: %w", stopErr))
		}
	}()

	logger := newFerretLogger(stderr, c.mongoLog)
	fs, err := startFerret(startCtx, c.dir, c.mongoPort, logger)
	if err != nil {
		return fmt.Errorf("ferretdb: %w", err)
	}
	defer func() {
		if stopErr := fs.stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping ferretdb: %w", stopErr))
		}
	}()
	cancelStart()

	redisURL := "redis://" + net.JoinHostPort(loopback, strconv.Itoa(rs.port)) + "/0"
	mongoURI := fs.uri
	lines := redisURLKey + "=" + redisURL + "\n" + mongoURIKey + "=" + mongoURI + "\n"

	if c.envFile != "" {
		if err = writeFileAtomic(c.envFile, []byte(lines)); err != nil {
			return fmt.Errorf("writing env file: %w", err)
		}
		defer func() {
			if rmErr := os.Remove(c.envFile); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("removing env file: %w", rmErr))
			}
		}()
	}

	if _, err = io.WriteString(stdout, lines); err != nil {
		return fmt.Errorf("writing to stdout: %w", err)
	}
	fmt.Fprintf(stderr, "devstack: redis at %s (pid %d), mongo at %s (data %s)\n", redisURL, rs.cmd.Process.Pid, mongoURI, fs.dataDir)
	if c.envFile != "" {
		fmt.Fprintf(stderr, "devstack: wrote %s\n", c.envFile)
	}
	fmt.Fprintf(stderr, "devstack: running; send SIGINT or SIGTERM to stop\n")

	select {
	case <-ctx.Done():
		fmt.Fprintf(stderr, "devstack: shutting down\n")
		return nil
	case <-rs.exited:
		return fmt.Errorf("redis-server exited unexpectedly: %w%s", rs.waitErr, rs.logTail())
	case ferr := <-fs.done:
		fs.done = nil // already collected
		if ferr == nil {
			ferr = errors.New("Run returned")
		}
		return fmt.Errorf("ferretdb stopped unexpectedly: %w", ferr)
	}
}

const loopback = "127.0.0.1"

// checkPortFree reports an error if something already listens on 127.0.0.1:port.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is not available: %w", port, loopback, err)
	}
	if err = l.Close(); err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	return nil
}

// freePort asks the kernel for a currently unused port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return 0, fmt.Errorf("picking a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err = l.Close(); err != nil {
		return 0, fmt.Errorf("picking a free port: %w", err)
	}
	return port, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so that readers never see a partial file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename

	if _, err = f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming into place: %w", err)
	}
	return nil
}

// syncWriter serialises writes from our own messages, FerretDB's logger and
// redis-server's output, which all share stderr.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
