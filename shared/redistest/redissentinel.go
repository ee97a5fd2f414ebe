package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name StartRedisSentinel's sentinels monitor.
const SentinelMaster = "mymaster"

// RedisSentinel is a private Sentinel deployment: one master, one replica
// and three sentinels (redis-server --sentinel, so Debian's redis-server
// package is all it needs), on loopback ports of its own, stopped when the
// test ends. The sentinels fail over with a quorum of two after the master
// has not answered for a second.
type RedisSentinel struct {
	t         testing.TB
	Servers   []*RedisServer // the master first, then the replica, as started
	Sentinels []*RedisServer
}

// StartRedisSentinel starts a master, a replica of it and three sentinels
// monitoring it, and waits until every sentinel knows the master, the
// replica and the two other sentinels. Without redis-server the test
// skips, or fails when CI is set.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not on PATH: install redis-server")
		}
		t.Skip("redis-server not on PATH: install redis-server")
	}
	s := &RedisSentinel{t: t}
	master := s.start(nil)
	s.Servers = append(s.Servers, master)
	s.Servers = append(s.Servers, s.start(func(r *RedisServer) {
		r.args = []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}
	}))
	s.waitReplicaSynced(s.Servers[1])
	for range 3 {
		s.Sentinels = append(s.Sentinels, s.start(func(r *RedisServer) {
			// Sentinel keeps its state in its config file, which it
			// rewrites: one of its own, in its directory.
			r.conf = filepath.Join(r.Dir, "sentinel.conf")
			conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
				"sentinel down-after-milliseconds %[1]s 1000\n"+
				"sentinel failover-timeout %[1]s 5000\n", SentinelMaster, master.Port)
			if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			r.args = []string{"--sentinel"}
		}))
	}
	s.waitKnown()
	return s
}

// start starts a redis-server set up by setup (nil: a plain one) on a
// fresh port, retrying on another port if one was taken meanwhile.
func (s *RedisSentinel) start(setup func(*RedisServer)) *RedisServer {
	s.t.Helper()
	r := &RedisServer{t: s.t, Dir: s.t.TempDir()}
	if setup != nil {
		setup(r)
	}
	s.t.Cleanup(r.Kill)
	for attempt := 1; ; attempt++ {
		r.Port = quietPort(s.t)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 5 {
			s.t.Fatal(err)
		}
	}
}

// waitReplicaSynced waits until r's link to its master is up: the
// sentinels then find it in the master's INFO at once.
func (s *RedisSentinel) waitReplicaSynced(r *RedisServer) {
	s.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rdb.Close()
	s.poll(30*time.Second, func(ctx context.Context) (bool, string) {
		info, err := rdb.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up"), fmt.Sprintf("replica %s: %v %s", r.Addr(), err, info)
	})
}

// waitKnown waits until every sentinel sees the master up with one replica
// and two other sentinels: a failover can then be agreed on and carried
// out.
func (s *RedisSentinel) waitKnown() {
	s.t.Helper()
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), MaxRetries: -1})
		s.poll(30*time.Second, func(ctx context.Context) (bool, string) {
			m, err := sc.Master(ctx, SentinelMaster).Result()
			ok := err == nil && m["flags"] == "master" && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2"
			return ok, fmt.Sprintf("sentinel %s: %v %v", sn.Addr(), err, m)
		})
		_ = sc.Close()
	}
}

// poll calls check every 50ms until it reports true, and fails the test
// with check's last description if that takes longer than timeout.
func (s *RedisSentinel) poll(timeout time.Duration, check func(context.Context) (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok, state := check(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis sentinel not ready after %v: %s", timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SentinelAddrs are the sentinels' host:port.
func (s *RedisSentinel) SentinelAddrs() []string {
	var a []string
	for _, sn := range s.Sentinels {
		a = append(a, sn.Addr())
	}
	return a
}

// URL is the deployment's URL in go-redis's (and shared/redisconn's)
// convention: the first sentinel as the host, the others as addr=, and
// master_name.
func (s *RedisSentinel) URL() string {
	a := s.SentinelAddrs()
	return "redis://" + a[0] + "?master_name=" + SentinelMaster + "&addr=" + strings.Join(a[1:], "&addr=")
}

// MasterAddrs asks every sentinel for the master's address (SENTINEL
// GET-MASTER-ADDR-BY-NAME), in the order of Sentinels; a sentinel that
// does not answer has "".
func (s *RedisSentinel) MasterAddrs(ctx context.Context) []string {
	out := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), MaxRetries: -1})
		if a, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result(); err == nil && len(a) == 2 {
			out[i] = net.JoinHostPort(a[0], a[1])
		}
		_ = sc.Close()
	}
	return out
}

// Master is the server every sentinel reports as the master now; the test
// fails if they disagree or name no server of this deployment.
func (s *RedisSentinel) Master() *RedisServer {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs := s.MasterAddrs(ctx)
	for _, a := range addrs[1:] {
		if a != addrs[0] {
			s.t.Fatalf("the sentinels disagree on the master: %v", addrs)
		}
	}
	for _, r := range s.Servers {
		if r.Addr() == addrs[0] {
			return r
		}
	}
	s.t.Fatalf("the sentinels name no master of this deployment: %v", addrs)
	return nil
}

// WaitFailover waits until every sentinel reports a master other than old
// and returns it; the test fails after timeout.
func (s *RedisSentinel) WaitFailover(old *RedisServer, timeout time.Duration) *RedisServer {
	s.t.Helper()
	s.poll(timeout, func(ctx context.Context) (bool, string) {
		addrs := s.MasterAddrs(ctx)
		for _, a := range addrs {
			if a == "" || a == old.Addr() || a != addrs[0] {
				return false, fmt.Sprintf("masters reported after %s: %v", old.Addr(), addrs)
			}
		}
		return true, ""
	})
	return s.Master()
}

// Client returns a Sentinel-backed failover client, closed when the test
// ends.
func (s *RedisSentinel) Client() *redis.Client {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: s.SentinelAddrs()})
	s.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
