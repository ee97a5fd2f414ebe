// Package events takes security events off the request path: Publish never
// blocks, and background loops write them in batches to MongoDB
// (bulwark.events, idempotent by _id, a few batches in flight) and to a
// capped Redis Stream for live consumers. Repeats of an event from one
// client within the aggregation window are folded into one event with a
// count, so an attacker cannot make the gateway write an event per request.
// With a spool directory, a batch MongoDB refuses or cannot take in time
// waits on disk and is replayed, oldest first, in the background while new
// events keep flowing; without one, events wait in a bounded queue and a
// failed batch is retried with backoff until it lands.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
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
	// QueueSize bounds the events waiting in memory for each destination;
	// beyond it Publish drops them (counted).
	QueueSize int
	// BatchSize is the size of a MongoDB insert (a batch spilled to the
	// spool takes the queue behind it along) and the most XADDs in one
	// Redis pipeline; a partial batch leaves after FlushInterval.
	BatchSize     int
	FlushInterval time.Duration
	// Writers is how many batches are written to MongoDB at once (default
	// DefaultWriters).
	Writers      int
	StreamMaxLen int64
	// SpoolDir, when set, holds events on disk while MongoDB is down or
	// slower than they arrive (up to SpoolMaxBytes); without it at most
	// QueueSize events (and a batch per writer) wait in memory.
	SpoolDir      string
	SpoolMaxBytes int64
	// AggregateWindow, when positive, folds repeats of an event (same
	// client, type, route and status) within the window into one event with
	// a count; see folds for the types that are never folded.
	AggregateWindow time.Duration
	// AggregateKeys caps the repeats being watched at once (default
	// DefaultAggregateKeys); beyond it events are sent unfolded.
	AggregateKeys int
	// StopTimeout is how long queued events may still be written once
	// Run's context ends (default DefaultStopTimeout): a bound on the
	// shutdown. What is not in MongoDB by then waits in the spool, or is
	// counted dropped without one.
	StopTimeout time.Duration
}

// Defaults for the options a zero value leaves unset.
const (
	// DefaultWriters keeps a few inserts in flight: the server's work on
	// one overlaps the network and commit waits of the others.
	DefaultWriters = 4
	// DefaultAggregateKeys bounds the aggregation table (about 200 bytes a
	// key).
	DefaultAggregateKeys = 10_000
	// DefaultStopTimeout is the time queued events get at shutdown.
	DefaultStopTimeout = 3 * time.Second
)

// Sink fans events out to MongoDB and the Redis Stream.
type Sink struct {
	coll   *mongo.Collection
	rdb    redis.UniversalClient
	stream string
	opt    Options
	log    *slog.Logger

	toMongo  chan wire.Event
	toStream chan wire.Event
	batches  chan []wire.Event // to the writers
	spooledC chan struct{}     // wakes the replay when events are spooled

	spool *spool
	agg   *aggregator

	dropped       atomic.Int64
	streamDropped atomic.Int64
	folded        atomic.Int64
	written       atomic.Int64
	spooled       atomic.Int64
	dropLogged    atomic.Int64 // unix nanoseconds of the last drop warning
}

// dropLogEvery spaces the warnings about dropped events: the first drop is
// logged at once, then at most one line (with the totals) per interval.
const dropLogEvery = 10 * time.Second

// NewSink returns a sink; call Run to start its loops.
func NewSink(coll *mongo.Collection, rdb redis.UniversalClient, prefix string, opt Options, log *slog.Logger) (*Sink, error) {
	if coll == nil || rdb == nil || log == nil {
		return nil, errors.New("events: nil collection, redis client or logger")
	}
	if opt.QueueSize < 1 || opt.BatchSize < 1 || opt.FlushInterval <= 0 || opt.StreamMaxLen < 1 ||
		opt.Writers < 0 || opt.AggregateWindow < 0 || opt.AggregateKeys < 0 || opt.StopTimeout < 0 {
		return nil, fmt.Errorf("events: invalid options %+v", opt)
	}
	if opt.Writers == 0 {
		opt.Writers = DefaultWriters
	}
	if opt.AggregateKeys == 0 {
		opt.AggregateKeys = DefaultAggregateKeys
	}
	if opt.StopTimeout == 0 {
		opt.StopTimeout = DefaultStopTimeout
	}
	if opt.SpoolDir != "" && opt.SpoolMaxBytes <= 0 {
		opt.SpoolMaxBytes = 1 << 30
	}
	s := &Sink{
		coll: coll, rdb: rdb, stream: wire.StreamKey(prefix), opt: opt, log: log,
		toMongo:  make(chan wire.Event, opt.QueueSize),
		toStream: make(chan wire.Event, opt.QueueSize),
		batches:  make(chan []wire.Event),
		spooledC: make(chan struct{}, 1),
	}
	if opt.SpoolDir != "" {
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
		s.warnDropped()
	}
	select {
	case s.toStream <- ev:
	default:
		s.streamDropped.Add(1)
		s.warnDropped()
	}
}

// warnDropped logs that events are being dropped, at most once per
// dropLogEvery; the counts are also in the gateway's metrics.
func (s *Sink) warnDropped() {
	now := time.Now().UnixNano()
	last := s.dropLogged.Load()
	if now-last < int64(dropLogEvery) || !s.dropLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("events dropped: the queue is full", "dropped_total", s.dropped.Load(),
		"stream_dropped_total", s.streamDropped.Load(), "queue_size", s.opt.QueueSize, "spool", s.spool != nil)
}

// Dropped is the number of events that never reached MongoDB: refused
// because the queue was full, or left unwritten at shutdown.
func (s *Sink) Dropped() int64 { return s.dropped.Load() }

// StreamDropped is the number of events refused because the stream queue
// was full.
func (s *Sink) StreamDropped() int64 { return s.streamDropped.Load() }

// Spooled is the number of events that waited on disk for MongoDB.
func (s *Sink) Spooled() int64 { return s.spooled.Load() }

// Written is the number of events stored in MongoDB.
func (s *Sink) Written() int64 { return s.written.Load() }

// Folded is the number of published events held in an aggregation window:
// they leave as the counts of folded events.
func (s *Sink) Folded() int64 { return s.folded.Load() }

// Run writes events until ctx ends. Then it sends what the aggregation
// windows hold, writes what is queued (giving MongoDB and the stream
// Options.StopTimeout; the rest waits in the spool for the next start) and
// returns.
func (s *Sink) Run(ctx context.Context) error {
	stop, stopped := context.WithCancel(context.WithoutCancel(ctx))
	defer stopped()
	// Writes may finish for StopTimeout after stop.
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	var loops, writers sync.WaitGroup
	loops.Go(func() { s.streamLoop(stop, wctx) })
	loops.Go(func() { s.collect(stop) })
	for range s.opt.Writers {
		writers.Go(func() { s.writeLoop(stop, wctx) })
	}
	if s.spool != nil {
		loops.Go(func() { s.replayLoop(stop, wctx) })
	}
	s.closeWindows(ctx)
	stopped()
	t := time.AfterFunc(s.opt.StopTimeout, cancelWrites)
	defer t.Stop()
	loops.Wait()
	writers.Wait()
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
