// Package redistest starts private Redis servers for tests: one
// redis-server (to stop, kill or freeze without touching a shared server),
// a 3-master 3-replica Redis Cluster and a Sentinel deployment (a master,
// a replica, three sentinels), from Debian's redis-server on
// loopback ports of their own, stopped when the test ends. Every module's
// tests use it: the gateway's scenarios and the whole-stack tests in
// deploy/e2e.
package redistest
