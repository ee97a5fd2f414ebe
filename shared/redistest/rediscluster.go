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
			// A replica syncs at once rather than after the 5s default
			// delay: one that never synced refuses to take over from a
			// dead master ("Disconnected from master for longer than
			// allowed"), so a failover test would see no failover.
			"--repl-diskless-sync-delay", "0",
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
// all 16384 slots and sees every replica as one, and every replica has
// synced with its master (master_link_status:up): only a synced replica
// can be promoted.
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
			var nodes, repl string
			if err == nil {
				nodes, err = rdb.ClusterNodes(ctx).Result()
			}
			if err == nil {
				repl, err = rdb.Info(ctx, "replication").Result()
			}
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Count(nodes, "slave") >= c.replicas() &&
				(!strings.Contains(repl, "role:slave") || strings.Contains(repl, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				_ = rdb.Close()
				c.t.Fatalf("redis cluster node %s not ok after 30s: %v\n%s\n%s", n.Addr(), err, info, repl)
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

// MasterOf returns the node that serves key's slot now.
func (c *RedisCluster) MasterOf(key string) *RedisServer {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rdb := c.Client()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		c.t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			for _, n := range c.Nodes {
				if n.Addr() == s.Nodes[0].Addr {
					return n
				}
			}
		}
	}
	c.t.Fatalf("no master for slot %d", slot)
	return nil
}

// Promoted reports whether the cluster, as a surviving node sees it, has
// moved every slot away from victim and reports cluster_state:ok: a replica
// took over the slots of a master that died. nodes is that node's CLUSTER
// NODES (or the error), for the test's log.
func (c *RedisCluster) Promoted(victim *RedisServer) (ok bool, nodes string) {
	c.t.Helper()
	var via *RedisServer
	for _, n := range c.Nodes {
		if n != victim && !n.exited() {
			via = n
			break
		}
	}
	if via == nil {
		return false, "no surviving node"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: via.Addr(), MaxRetries: -1})
	defer rdb.Close()
	info, err := rdb.ClusterInfo(ctx).Result()
	if err == nil {
		nodes, err = rdb.ClusterNodes(ctx).Result()
	}
	if err != nil {
		return false, err.Error()
	}
	for _, line := range strings.Split(nodes, "\n") {
		// <id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		f := strings.Fields(line)
		if len(f) >= 8 && strings.HasPrefix(f[1], victim.Addr()+"@") && len(f) > 8 {
			return false, nodes // still holds slots
		}
	}
	return strings.Contains(info, "cluster_state:ok"), nodes
}
