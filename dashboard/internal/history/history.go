// Package history answers questions about past security events from
// MongoDB (bulwark.events). Every query is served by one of the indexes the
// gateway creates (ts, ip+ts, type+ts) and uses only operations that both
// MongoDB and the FerretDB test server support.
package history

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// MaxLimit caps one page of events.
const MaxLimit = 500

// Query selects events, newest first.
type Query struct {
	Type  wire.EventType // empty: any
	IP    string         // empty: any
	Limit int            // 1..MaxLimit
}

// Store reads events.
type Store struct {
	coll *mongo.Collection
}

// New returns a store over the events collection.
func New(coll *mongo.Collection) (*Store, error) {
	if coll == nil {
		return nil, errors.New("history: nil collection")
	}
	return &Store{coll: coll}, nil
}

// Events returns the newest events matching q.
func (s *Store) Events(ctx context.Context, q Query) ([]wire.Event, error) {
	if q.Limit < 1 || q.Limit > MaxLimit {
		return nil, fmt.Errorf("history: limit %d outside [1, %d]", q.Limit, MaxLimit)
	}
	filter := bson.D{}
	if q.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: string(q.Type)})
	}
	if q.IP != "" {
		filter = append(filter, bson.E{Key: "ip", Value: q.IP})
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "ts", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	out := []wire.Event{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}
