package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// redisServer is a redis-server child process owned by us.
type redisServer struct {
	cmd  *exec.Cmd
	port int
	dir  string // --dir: temporary, removed by stop, unless keep
	keep bool   // dir holds the append-only file of make run's data

	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // valid after exited is closed
}

// startRedis starts redis-server from PATH on 127.0.0.1:port (a free port
// other than avoid if port is 0) and waits until it answers PING. With a
// dataDir it keeps its data there in an append-only file, fsynced every
// second, as the recommended deployment does (docker-compose.yml): bans,
// login locks and keys survive a restart. Without one it runs in a
// temporary directory with no persistence at all.
func startRedis(ctx context.Context, port, avoid int, dataDir string, stderr io.Writer) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH: %w", err)
	}

	// With a kernel-picked port another process may grab it between our
	// probe and redis-server's bind; redis-server then exits, and we retry.
	attempts := 1
	if port == 0 {
		attempts = 3
	}
	for i := 1; ; i++ {
		p := port
		for p == 0 || p == avoid {
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		rs, err := startRedisOnce(ctx, bin, p, dataDir, stderr)
		if err == nil {
			return rs, nil
		}
		if i >= attempts || ctx.Err() != nil || !errors.Is(err, errPortTaken) {
			return nil, err
		}
		fmt.Fprintf(stderr, "devstack: redis-server on port %d failed (%v), retrying on another port\n", p, err)
	}
}

var (
	errExitedEarly = errors.New("redis-server exited during start-up")
	errPortTaken   = errors.New("port taken")
)

func startRedisOnce(ctx context.Context, bin string, port int, dataDir string, stderr io.Writer) (*redisServer, error) {
	dir, keep, aof := dataDir, true, []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "devstack-redis-*"); err != nil {
			return nil, fmt.Errorf("creating temp dir: %w", err)
		}
		keep, aof = false, []string{"--appendonly", "no"}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}

	args := []string{"--port", strconv.Itoa(port), "--bind", loopback, "--save", ""}
	args = append(args, aof...)
	args = append(args, "--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--logfile", filepath.Join(dir, logFileName))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// Redis logs (even its start-up banner) go to a file that we quote on
	// failure; anything it prints directly goes to stderr, as stdout is
	// reserved for the env lines.
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.WaitDelay = time.Second // don't hang on the output pipe after exit

	if err := cmd.Start(); err != nil {
		if !keep {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}

	rs := &redisServer{cmd: cmd, port: port, dir: dir, keep: keep, exited: make(chan struct{})}
	go func() {
		rs.waitErr = cmd.Wait()
		close(rs.exited)
	}()

	if err := rs.waitReady(ctx); err != nil {
		if stopErr := rs.stop(io.Discard); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", stopErr))
		}
		return nil, err
	}
	return rs, nil
}

// waitReady polls until our redis-server answers PING on its port.
func (rs *redisServer) waitReady(ctx context.Context) error {
	addr := net.JoinHostPort(loopback, strconv.Itoa(rs.port))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()

	var lastErr error
	for {
		select {
		case <-rs.exited:
			tail := rs.logTail()
			if strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("%w (port %d, %w): %v%s", errExitedEarly, rs.port, errPortTaken, rs.waitErr, tail)
			}
			return fmt.Errorf("%w (port %d): %v%s", errExitedEarly, rs.port, rs.waitErr, tail)
		default:
		}

		if lastErr = ping(ctx, addr); lastErr == nil {
			// Make sure the PONG came from our child and not from a server
			// that took the port in the meantime.
			pid, err := redisPID(ctx, addr)
			if err != nil {
				return fmt.Errorf("checking redis-server identity on %s: %w", addr, err)
			}
			if pid != rs.cmd.Process.Pid {
				return fmt.Errorf("%s is served by another redis-server (pid %d, ours is %d)", addr, pid, rs.cmd.Process.Pid)
			}
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s not ready: %w (last error: %v)", addr, ctx.Err(), lastErr)
		case <-rs.exited:
		case <-t.C:
		}
	}
}

// stop sends SIGTERM to redis-server's process group, escalates to SIGKILL
// after 3 s, and removes the temporary directory. Setpgid made redis-server
// the leader of its own group, which holds nothing but it and its forks.
func (rs *redisServer) stop(stderr io.Writer) error {
	var errs []error
	pgid := rs.cmd.Process.Pid

	select {
	case <-rs.exited:
	default:
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("SIGTERM: %w", err))
		}
		select {
		case <-rs.exited:
		case <-time.After(3 * time.Second):
			fmt.Fprintf(stderr, "devstack: redis-server (pid %d) ignored SIGTERM for 3s, sending SIGKILL\n", pgid)
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("SIGKILL: %w", err))
			}
			<-rs.exited
		}
	}
	// Sweep up anything left in the group (e.g. a fork of a crashed server).
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		errs = append(errs, fmt.Errorf("SIGKILL: %w", err))
	}

	if !rs.keep {
		if err := os.RemoveAll(rs.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", rs.dir, err))
		}
	}
	return errors.Join(errs...)
}

const logFileName = "redis.log"

// logTail returns the last lines of redis-server's log file, formatted for
// appending to an error message, or "" if there is nothing to show.
func (rs *redisServer) logTail() string {
	data, err := os.ReadFile(filepath.Join(rs.dir, logFileName))
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "\nredis-server log (last lines):\n\t" + strings.Join(lines, "\n\t")
}

// ping sends a raw PING and expects +PONG.
func ping(ctx context.Context, addr string) error {
	reply, err := redisCommand(ctx, addr, "PING\r\n", func(r *bufio.Reader) (string, error) {
		return r.ReadString('\n')
	})
	if err != nil {
		return err
	}
	if strings.TrimRight(reply, "\r\n") != "+PONG" {
		return fmt.Errorf("unexpected PING reply %q", reply)
	}
	return nil
}

// redisPID returns process_id from INFO server.
func redisPID(ctx context.Context, addr string) (int, error) {
	info, err := redisCommand(ctx, addr, "INFO server\r\n", readBulk)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				return 0, fmt.Errorf("bad process_id %q: %w", v, err)
			}
			return pid, nil
		}
	}
	return 0, errors.New("no process_id in INFO reply")
}

func redisCommand(ctx context.Context, addr, cmd string, read func(*bufio.Reader) (string, error)) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()

	if err = conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", fmt.Errorf("set deadline: %w", err)
	}
	if _, err = io.WriteString(conn, cmd); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	reply, err := read(bufio.NewReader(conn))
	if err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	return reply, nil
}

// readBulk reads a RESP bulk string reply.
func readBulk(r *bufio.Reader) (string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") {
		return "", fmt.Errorf("unexpected reply %q", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("bad bulk length %q", head)
	}
	buf := make([]byte, n+2)
	if _, err = io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
