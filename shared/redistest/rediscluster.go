package redistest

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a private Redis Cluster of three masters and three
// replicas (redis-server --cluster-enabled yes, joined by redis-cli
// --cluster create), on loopback ports of its own, stopped when the test
// ends.
type RedisCluster struct {
	t     testing.TB
	Nodes []*RedisServer // in creation order: redis-cli makes the first three masters
}

// StartRedisCluster starts six redis-servers in cluster mode, joins them
// with one replica per master and waits until every node reports
// cluster_state:ok. Without redis-server or redis-cli (Debian's
// redis-tools) the test skips, or fails when CI is set.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not on PATH: install redis-server and redis-tools", bin)
			}
			t.Skipf("%s not on PATH: install redis-server and redis-tools", bin)
		}
	}
	c := &RedisCluster{t: t}
	used := map[int]bool{}
	for range 6 {
		r := &RedisServer{t: t, Dir: t.TempDir(), args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--appendonly", "no",
		}}
		t.Cleanup(r.Kill)
		for attempt := 1; ; attempt++ {
			r.Port = clusterPort(t, used)
			err := r.start()
			if err == nil {
				break
			}
			if attempt == 5 {
				t.Fatal(err)
			}
		}
		used[r.Port] = true
		c.Nodes = append(c.Nodes, r)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK()
	return c
}

// clusterPort is a free loopback port whose cluster bus port (+10000) is
// free too, both below the kernel's ephemeral range.
func clusterPort(t testing.TB, used map[int]bool) int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 31000 {
				low = n
			}
		}
	}
	free := func(p int) bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	for range 200 {
		p := 20000 + rand.IntN(low-10000-20000)
		if !used[p] && !used[p+10000] && !used[p-10000] && free(p) && free(p+10000) {
			return p
		}
	}
	t.Fatal("no free port pair below the ephemeral range")
	return 0
}

// waitOK waits until every running node reports cluster_state:ok, knows
// all 16384 slots and sees every replica as one.
func (c *RedisCluster) waitOK() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		if n.exited() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := rdb.ClusterInfo(ctx).Result()
			var nodes string
			if err == nil {
				nodes, err = rdb.ClusterNodes(ctx).Result()
			}
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Count(nodes, "slave") >= c.replicas() {
				break
			}
			if time.Now().After(deadline) {
				_ = rdb.Close()
				c.t.Fatalf("redis cluster node %s not ok after 30s: %v\n%s", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = rdb.Close()
	}
}

// replicas is how many replicas are running.
func (c *RedisCluster) replicas() int {
	n := 0
	for _, r := range c.Nodes[len(c.Nodes)/2:] {
		if !r.exited() {
			n++
		}
	}
	return n
}

// Addrs are the nodes' host:port.
func (c *RedisCluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr())
	}
	return a
}

// URL is the cluster's URL in go-redis's convention: the first node as the
// host, the others as addr= seeds.
func (c *RedisCluster) URL() string {
	a := c.Addrs()
	return "redis://" + a[0] + "?addr=" + strings.Join(a[1:], "&addr=")
}

// Client returns a cluster client, closed when the test ends.
func (c *RedisCluster) Client() *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
