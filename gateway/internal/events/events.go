// Package events takes security events off the request path: Publish never
// blocks, and background loops write them in batches to MongoDB
// (bulwark.events, idempotent by _id) and to a capped Redis Stream for live
// consumers. Repeats of an event from one client within the aggregation
// window are folded into one event with a count, so an attacker cannot make
// the gateway write an event per request. A failed MongoDB batch is retried
// with backoff, in order, until it lands; meanwhile events wait in a bounded
// queue and, when a spool directory is configured, on disk.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Options tunes a Sink.
type Options struct {
	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
	StreamMaxLen  int64
	// AggregateWindow, when positive, folds repeats of an event (same
	// client, type, route and status) within the window into one event with
	// a count; see folds for the types that are never folded.
	AggregateWindow time.Duration
	// AggregateKeys caps the repeats being watched at once (default
	// DefaultAggregateKeys); beyond it events are sent unfolded.
	AggregateKeys int
	// SpoolDir, when set, holds events on disk while MongoDB is down (up to
	// SpoolMaxBytes); without it at most QueueSize events wait in memory.
	SpoolDir      string
	SpoolMaxBytes int64
}

// Sink fans events out to MongoDB and the Redis Stream.
type Sink struct {
	coll   *mongo.Collection
	rdb    redis.UniversalClient
	stream string
	opt    Options
	log    *slog.Logger

	toMongo  chan wire.Event
	toStream chan wire.Event

	spool *spool
	agg   *aggregator

	dropped atomic.Int64
	folded  atomic.Int64
	written atomic.Int64
	spooled atomic.Int64
}

// NewSink returns a sink; call Run to start its loops.
func NewSink(coll *mongo.Collection, rdb redis.UniversalClient, prefix string, opt Options, log *slog.Logger) (*Sink, error) {
	if coll == nil || rdb == nil || log == nil {
		return nil, errors.New("events: nil collection, redis client or logger")
	}
	if opt.QueueSize < 1 || opt.BatchSize < 1 || opt.FlushInterval <= 0 || opt.StreamMaxLen < 1 || opt.AggregateWindow < 0 || opt.AggregateKeys < 0 {
		return nil, fmt.Errorf("events: invalid options %+v", opt)
	}
	if opt.AggregateKeys == 0 {
		opt.AggregateKeys = DefaultAggregateKeys
	}
	s := &Sink{
		coll: coll, rdb: rdb, stream: wire.StreamKey(prefix), opt: opt, log: log,
		toMongo:  make(chan wire.Event, opt.QueueSize),
		toStream: make(chan wire.Event, opt.QueueSize),
	}
	if opt.SpoolDir != "" {
		if opt.SpoolMaxBytes <= 0 {
			opt.SpoolMaxBytes = 1 << 30
		}
		sp, err := newSpool(opt.SpoolDir, opt.SpoolMaxBytes)
		if err != nil {
			return nil, err
		}
		s.spool = sp
	}
	if opt.AggregateWindow > 0 {
		s.agg = newAggregator(opt.AggregateWindow, opt.AggregateKeys)
	}
	return s, nil
}

// DefaultAggregateKeys bounds the aggregation table (about 200 bytes a key).
const DefaultAggregateKeys = 10_000

// NewID returns a unique, time-ordered event id.
func NewID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}

// Publish queues ev without blocking, or folds it into an open aggregation
// window. If a queue is full the event is counted as dropped for that
// destination.
func (s *Sink) Publish(ev wire.Event) {
	if s.agg != nil && s.agg.fold(ev, time.Now()) {
		s.folded.Add(1)
		return
	}
	s.send(ev)
}

func (s *Sink) send(ev wire.Event) {
	select {
	case s.toMongo <- ev:
	default:
		s.dropped.Add(1)
	}
	select {
	case s.toStream <- ev:
	default:
	}
}

// Dropped is the number of events refused because the MongoDB queue was full.
func (s *Sink) Dropped() int64 { return s.dropped.Load() }

// Spooled is the number of events that waited on disk for MongoDB.
func (s *Sink) Spooled() int64 { return s.spooled.Load() }

// Written is the number of events stored in MongoDB.
func (s *Sink) Written() int64 { return s.written.Load() }

// Folded is the number of published events held in an aggregation window:
// they leave as the counts of folded events.
func (s *Sink) Folded() int64 { return s.folded.Load() }

// Run writes events until ctx ends, then sends what the aggregation windows
// hold, flushes what is queued (for at most a few seconds) and returns.
func (s *Sink) Run(ctx context.Context) error {
	loops, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		s.streamLoop(loops)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		s.mongoLoop(loops)
	}()
	s.closeWindows(ctx)
	stop()
	<-done
	<-done
	return nil
}

// closeWindows sends the folded events of the aggregation windows as they
// close, and those of every open window when ctx ends.
func (s *Sink) closeWindows(ctx context.Context) {
	if s.agg == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(max(s.opt.AggregateWindow/4, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, ev := range s.agg.all() {
				s.send(ev)
			}
			return
		case now := <-t.C:
			for _, ev := range s.agg.due(now) {
				s.send(ev)
			}
		}
	}
}

func (s *Sink) mongoLoop(ctx context.Context) {
	var pending []wire.Event
	tick := time.NewTicker(s.opt.FlushInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	var retryAt time.Time
	failed := func(err error) {
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		retryAt = time.Now().Add(backoff)
		s.log.Warn("event write failed", "err", err, "pending", len(pending), "retry_in", backoff)
	}
	// park moves what waits in memory to the spool, so memory stays bounded
	// however long MongoDB is away.
	park := func() {
		if s.spool == nil || len(pending) == 0 {
			return
		}
		if err := s.spool.append(pending); err != nil {
			s.log.Error("event spool write failed", "err", err)
			return
		}
		s.spooled.Add(int64(len(pending)))
		pending = nil
	}
	flush := func(ctx context.Context) {
		// Spooled events are older than those in memory: they go first.
		if s.spool != nil && !s.spool.empty() {
			n, err := s.spool.replay(s.opt.BatchSize, func(b []wire.Event) error { return s.insert(ctx, b) })
			s.written.Add(int64(n))
			if err != nil {
				failed(err)
				park()
				return
			}
		}
		for len(pending) > 0 {
			n := min(len(pending), s.opt.BatchSize)
			if err := s.insert(ctx, pending[:n]); err != nil {
				failed(err)
				park()
				return
			}
			backoff = 0
			s.written.Add(int64(n))
			pending = pending[n:]
		}
		pending = nil
	}
	add := func(ev wire.Event) {
		if len(pending) >= s.opt.QueueSize {
			park()
		}
		if len(pending) >= s.opt.QueueSize {
			s.dropped.Add(1) // no spool, or the spool is full
			return
		}
		pending = append(pending, ev)
	}
	for {
		select {
		case <-ctx.Done():
			// Drain what is queued and give MongoDB a last chance; what it
			// does not take waits in the spool for the next start.
			for {
				select {
				case ev := <-s.toMongo:
					add(ev)
					continue
				default:
				}
				break
			}
			fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			flush(fctx)
			cancel()
			park()
			if len(pending) > 0 {
				s.log.Error("events not written at shutdown", "count", len(pending))
			}
			return
		case ev := <-s.toMongo:
			add(ev)
			if len(pending) >= s.opt.BatchSize && time.Now().After(retryAt) {
				flush(ctx)
			}
		case <-tick.C:
			if time.Now().After(retryAt) {
				flush(ctx)
			}
		}
	}
}

// insert writes one batch. Documents already present (same _id, from a batch
// that landed but whose reply was lost) are not an error.
func (s *Sink) insert(ctx context.Context, batch []wire.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return err
}

func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

func (s *Sink) streamLoop(ctx context.Context) {
	batch := make([]wire.Event, 0, 64)
	send := func() {
		if len(batch) == 0 {
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := s.rdb.Pipelined(sctx, func(p redis.Pipeliner) error {
			for _, ev := range batch {
				b, err := json.Marshal(ev)
				if err != nil {
					continue
				}
				p.XAdd(sctx, &redis.XAddArgs{
					Stream: s.stream, MaxLen: s.opt.StreamMaxLen, Approx: true,
					Values: []any{wire.StreamField, b},
				})
			}
			return nil
		})
		if err != nil {
			// The stream is a live view; history is in MongoDB.
			s.log.Warn("event stream publish failed", "err", err, "count", len(batch))
		}
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case ev := <-s.toStream:
					batch = append(batch, ev)
					continue
				default:
				}
				break
			}
			send()
			return
		case ev := <-s.toStream:
			batch = append(batch, ev)
		drain:
			for len(batch) < cap(batch) {
				select {
				case ev := <-s.toStream:
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			send()
		}
	}
}

// ErrNoTTL reports a server without TTL indexes (FerretDB v1): the caller
// must remove old events itself with Sweep.
var ErrNoTTL = errors.New("events: server has no TTL indexes")

// EnsureIndexes creates the indexes every history query relies on (ip+ts,
// type+ts, ts) and makes the ts index a TTL index that removes events older
// than retention. On a server without TTL indexes the ts index is plain and
// ErrNoTTL is returned.
func EnsureIndexes(ctx context.Context, coll *mongo.Collection, retention time.Duration) error {
	// One index per command: FerretDB v1 fails a createIndexes that lists
	// several indexes when some of them already exist.
	for _, m := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "ip", Value: 1}, {Key: "ts", Value: -1}}, Options: options.Index().SetName("ip_ts")},
		{Keys: bson.D{{Key: "type", Value: 1}, {Key: "ts", Value: -1}}, Options: options.Index().SetName("type_ts")},
	} {
		if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("create event indexes: %w", err)
		}
	}
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "ts", Value: 1}},
		Options: options.Index().SetName("ts").SetExpireAfterSeconds(int32(retention.Seconds())),
	})
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 238 { // NotImplemented
		if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "ts", Value: 1}}, Options: options.Index().SetName("ts"),
		}); err != nil {
			return fmt.Errorf("create event ts index: %w", err)
		}
		return ErrNoTTL
	}
	if err != nil {
		return fmt.Errorf("create event TTL index: %w", err)
	}
	return nil
}

// Sweep deletes events older than retention; it stands in for the TTL index
// where the server has none.
func Sweep(ctx context.Context, coll *mongo.Collection, retention time.Duration, now time.Time) (int64, error) {
	res, err := coll.DeleteMany(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$lt", Value: now.Add(-retention)}}}})
	if err != nil {
		return 0, fmt.Errorf("sweep events: %w", err)
	}
	return res.DeletedCount, nil
}
