package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a private redis-server the test owns, for faults the
// shared one must never see: stopped, killed, frozen (SIGSTOP) and started
// again on the same port and directory.
type RedisServer struct {
	t    testing.TB
	Port int
	Dir  string   // --dir: the AOF or RDB files, kept across restarts
	args []string // extra redis-server arguments
	conf string   // a config file read first (a sentinel's: it rewrites it), or ""
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedisServer starts redis-server from PATH on a free loopback port
// with args added to its command line (say "--appendonly", "yes"), in a
// temporary directory, and stops it when the test ends. Without
// redis-server the test skips, or fails when CI is set.
//
// The port lies below the kernel's ephemeral range: a port from that range
// may be taken by any outgoing connection while the server is down between
// a stop and a start (the gateway's own redials would do it).
func StartRedisServer(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not on PATH: make test installs it")
		}
		t.Skip("redis-server not on PATH: make test installs it")
	}
	r := &RedisServer{t: t, Dir: t.TempDir(), args: args}
	t.Cleanup(r.Kill)
	for attempt := 1; ; attempt++ {
		r.Port = quietPort(t)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 5 {
			t.Fatal(err)
		}
	}
}

// quietPort is a free loopback port between 20000 and the ephemeral range.
func quietPort(t testing.TB) int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 21000 {
				low = n
			}
		}
	}
	for range 100 {
		p := 20000 + rand.IntN(low-20000)
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// Addr is host:port.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the server's redis:// URL.
func (r *RedisServer) URL() string { return "redis://" + r.Addr() + "/0" }

// Start starts the server again on its port and directory and waits until
// it answers PING.
func (r *RedisServer) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *RedisServer) start() error {
	var args []string
	if r.conf != "" {
		args = []string{r.conf} // redis-server reads a config file only as its first argument
	}
	args = append(args, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "",
		"--dir", r.Dir, "--logfile", filepath.Join(r.Dir, "redis.log"))
	args = append(args, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited: %s", r.Addr(), log)
		default:
		}
		if time.Now().After(deadline) {
			r.Kill()
			return fmt.Errorf("redis-server on %s not ready: %w", r.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down as an operator would (SIGTERM: Redis writes
// its append-only file out and exits) and waits for it.
func (r *RedisServer) Stop() { r.signal(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and waits for it. A frozen server is
// killed too.
func (r *RedisServer) Kill() { r.signal(syscall.SIGKILL) }

func (r *RedisServer) signal(sig syscall.Signal) {
	r.t.Helper()
	if r.cmd == nil || r.exited() {
		return
	}
	if sig != syscall.SIGKILL {
		_ = r.cmd.Process.Signal(syscall.SIGCONT) // a frozen server cannot act on it
	}
	if err := r.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Errorf("redis-server: %v: %v", sig, err)
	}
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		r.t.Errorf("redis-server ignored %v for 15s", sig)
	}
}

func (r *RedisServer) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Freeze stops the process (SIGSTOP): connections are still accepted by
// the kernel, nothing is answered, as with a hung server.
func (r *RedisServer) Freeze() { r.must(r.cmd.Process.Signal(syscall.SIGSTOP)) }

// Thaw lets a frozen server run again (SIGCONT).
func (r *RedisServer) Thaw() { r.must(r.cmd.Process.Signal(syscall.SIGCONT)) }

func (r *RedisServer) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(fmt.Errorf("redis-server: %w", err))
	}
}

// Client returns a client for the server, closed when the test ends.
func (r *RedisServer) Client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	r.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
