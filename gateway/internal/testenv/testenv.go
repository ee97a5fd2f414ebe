// Package testenv gives integration tests the real servers `make test`
// starts: Redis from BULWARK_TEST_REDIS_URL and a MongoDB wire-protocol
// server from BULWARK_TEST_MONGO_URI. Each test gets its own key prefix or
// database and cleans it up; nothing else on the server is touched. Without
// the variables a test skips, unless CI is set, in which case it fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkgw/bulwark/shared/redisconn"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with `make test`", name)
		}
		t.Skipf("%s is not set: run the tests with `make test`", name)
	}
	return v
}

// Namespace returns a fresh unique name for keys, databases or streams.
func Namespace(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// RedisURL returns the test Redis URL.
func RedisURL(t testing.TB) string { return need(t, "BULWARK_TEST_REDIS_URL") }

// MongoURI returns the test MongoDB URI.
func MongoURI(t testing.TB) string { return need(t, "BULWARK_TEST_MONGO_URI") }

// Redis returns a client for the test server and a key prefix unique to the
// test. Keys under the prefix are deleted when the test ends. The URL may
// name a Redis Cluster (redis://host:port?addr=host2:port...): the whole
// suite then runs against it.
func Redis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	opt, err := redisconn.Options(RedisURL(t))
	if err != nil {
		t.Fatalf("BULWARK_TEST_REDIS_URL: %v", err)
	}
	rdb := redisconn.New(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis ping: %v", err)
	}
	prefix := Namespace(t) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		DeletePrefix(ctx, rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// DeletePrefix deletes the keys under prefix, on every master of a cluster.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}

// Mongo returns a database unique to the test, dropped when it ends.
func Mongo(t testing.TB) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(MongoURI(t)).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("mongo connect: %v", err)
	}
	db := client.Database(Namespace(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	return db
}

// Keys lists the keys matching pattern, on every master of a cluster (KEYS
// on a cluster client asks one node).
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, pattern).Result()
	}
	var mu sync.Mutex
	var all []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	return all, err
}

// IsCluster tells whether rdb is a Redis Cluster client.
func IsCluster(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}
