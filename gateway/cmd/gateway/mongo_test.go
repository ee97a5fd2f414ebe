package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

// mongo.write_concern reaches the server on the collections the gateway
// writes: the insert command carries it. (The test server, FerretDB,
// accepts any w and ignores it, so what is sent is what can be checked.)
func TestMongoCollectionWriteConcern(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	sent := map[string]bson.Raw{} // collection → writeConcern of its insert
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "insert" {
			return
		}
		coll, _ := e.Command.Lookup("insert").StringValueOK()
		wc, _ := e.Command.Lookup("writeConcern").DocumentOK()
		mu.Lock()
		sent[coll] = wc
		mu.Unlock()
	}}
	mc, err := mongo.Connect(options.Client().ApplyURI(testenv.MongoURI(t)).SetMonitor(mon))
	require.NoError(t, err)
	db := testenv.Namespace(t)
	t.Cleanup(func() {
		_ = mc.Database(db).Drop(context.Background())
		_ = mc.Disconnect(context.Background())
	})

	for wc, want := range map[string]any{"": nil, "majority": "majority", "2": int32(2)} {
		name := "events_w" + wc
		coll := mongoCollection(mc, config.Mongo{Database: db, WriteConcern: wc}, name)
		_, err := coll.InsertOne(context.Background(), bson.D{{Key: "n", Value: 1}})
		require.NoError(t, err, "w=%q", wc)
		mu.Lock()
		got, ok := sent[name]
		mu.Unlock()
		require.True(t, ok, "no insert seen for %s", name)
		if want == nil {
			assert.Nil(t, got, `write_concern "" sends none: the server's (or the URI's) default`)
			continue
		}
		require.NotNil(t, got, "w=%q", wc)
		w := got.Lookup("w")
		switch want := want.(type) {
		case string:
			assert.Equal(t, want, w.StringValue())
		case int32:
			assert.Equal(t, want, w.Int32())
		}
	}
}

// The whole gateway with write_concern majority: events and audit rows are
// written as before.
func TestScenarioMongoWriteConcernMajority(t *testing.T) {
	t.Parallel()
	s := startStack(t, `
routes:
  - {path: /svc/, upstream: "{{U3}}"}
scorer: {enabled: false}
rate_limit: {requests_per_minute: 2, window: 60s}
events: {flush_interval: 10ms}
audit: {requests: true}
mongo: {write_concern: majority}
`)
	c := s.from("127.0.0.96")
	codes := []int{}
	for range 3 {
		codes = append(codes, c.get("/svc/x").Code)
	}
	require.Equal(t, http.StatusTooManyRequests, codes[2], "%v", codes)

	mc, err := mongo.Connect(options.Client().ApplyURI(testenv.MongoURI(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	db := mc.Database(s.env["BULWARK_MONGO_DB"])
	require.Eventually(t, func() bool {
		n, err := db.Collection("events").CountDocuments(context.Background(), bson.D{{Key: "ip", Value: "127.0.0.96"}})
		return err == nil && n >= 1
	}, 10*time.Second, 50*time.Millisecond, "the throttle event is written")
	require.Eventually(t, func() bool {
		n, err := db.Collection("audit").CountDocuments(context.Background(), bson.D{{Key: "client_ip", Value: "127.0.0.96"}})
		return err == nil && n == 3
	}, 10*time.Second, 50*time.Millisecond, "every request is audited")
}
