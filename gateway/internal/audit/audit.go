// Package audit keeps the gateway's audit log in MongoDB (collection
// "audit"): admin actions always, and every proxied request when request
// auditing is on (seed 001's log). Record never blocks the caller; a
// background loop writes batches. Queries are newest first and use the
// indexes EnsureIndexes creates.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Event types.
const (
	TypeRequest     = "request"
	TypeAdminAction = "admin_action"
)

// Entry is one row of the audit log.
type Entry struct {
	ID         int64     `bson:"_id"`
	Timestamp  time.Time `bson:"timestamp"`
	EventType  string    `bson:"event_type"`
	ClientIP   string    `bson:"client_ip"`
	Method     string    `bson:"method,omitempty"`
	Path       string    `bson:"path,omitempty"`
	StatusCode int       `bson:"status_code,omitempty"`
	DurationMS float64   `bson:"duration_ms,omitempty"`
	Action     string    `bson:"action,omitempty"`
	Details    string    `bson:"details,omitempty"`
	UserAgent  string    `bson:"user_agent,omitempty"`
	// Threat view of a request (seed 002's log): the decision, the score
	// and where the client is.
	ActionTaken string  `bson:"action_taken,omitempty"` // ALLOWED, THROTTLED or BLOCKED
	RiskScore   float64 `bson:"risk_score"`
	Location    string  `bson:"location,omitempty"`
	Degraded    bool    `bson:"degraded,omitempty"`
}

// Actions taken on a request.
const (
	Allowed   = "ALLOWED"
	Throttled = "THROTTLED"
	Blocked   = "BLOCKED"
)

// Query selects entries, newest first.
type Query struct {
	Limit, Offset       int
	EventType, ClientIP string
	// ClientPattern, when set, is a regular expression client_ip must
	// match: clientid.TextPattern, for every address of an IPv6 /64.
	ClientPattern string
}

// Stats counts entries.
type Stats struct {
	Total, Requests, AdminActions int64
}

// Log writes and reads the audit log.
type Log struct {
	coll        *mongo.Collection
	log         *slog.Logger
	queue       chan Entry
	seq         atomic.Int64
	dropped     atomic.Int64
	stopTimeout time.Duration
}

// DefaultStopTimeout is how long queued entries may still be written once
// Run's context ends, unless SetStopTimeout says otherwise.
const DefaultStopTimeout = 3 * time.Second

// New returns a log over coll with a queue of queueSize entries.
func New(coll *mongo.Collection, queueSize int, log *slog.Logger) (*Log, error) {
	if coll == nil || log == nil || queueSize < 1 {
		return nil, errors.New("audit: nil collection or logger, or empty queue")
	}
	return &Log{coll: coll, log: log, queue: make(chan Entry, queueSize), stopTimeout: DefaultStopTimeout}, nil
}

// SetStopTimeout bounds the writes after Run's context ends (a bound on the
// shutdown); call it before Run.
func (l *Log) SetStopTimeout(d time.Duration) {
	if d > 0 {
		l.stopTimeout = d
	}
}

// nextID is unique and increasing within a process: microseconds since the
// epoch times 1000 plus a sequence, so ids also sort by time across
// gateways.
func (l *Log) nextID(now time.Time) int64 {
	return now.UnixMicro()*1000 + l.seq.Add(1)%1000
}

// Record queues e without blocking; it is counted as dropped if the queue
// is full.
func (l *Log) Record(e Entry) {
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	e.Timestamp = e.Timestamp.UTC().Truncate(time.Millisecond)
	e.ID = l.nextID(e.Timestamp)
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
	}
}

// Run writes queued entries in batches until ctx ends, then flushes. Writes,
// one in progress included, end at most the stop timeout after ctx.
func (l *Log) Run(ctx context.Context) error {
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(l.stopTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			cancelWrites()
		}
	}()
	batch := make([]Entry, 0, 256)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		fctx, cancel := context.WithTimeout(wctx, 5*time.Second)
		defer cancel()
		if _, err := l.coll.InsertMany(fctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
			l.log.Warn("audit write failed", "err", err, "count", len(batch))
		}
		batch = batch[:0]
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case e := <-l.queue:
					batch = append(batch, e)
					continue
				default:
				}
				break
			}
			flush()
			return nil
		case e := <-l.queue:
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

// EnsureIndexes creates the indexes the queries use, one per command.
func EnsureIndexes(ctx context.Context, coll *mongo.Collection) error {
	for _, m := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "timestamp", Value: -1}}, Options: options.Index().SetName("timestamp")},
		{Keys: bson.D{{Key: "event_type", Value: 1}, {Key: "timestamp", Value: -1}}, Options: options.Index().SetName("event_type_timestamp")},
		{Keys: bson.D{{Key: "client_ip", Value: 1}, {Key: "timestamp", Value: -1}}, Options: options.Index().SetName("client_ip_timestamp")},
		{Keys: bson.D{{Key: "event_type", Value: 1}, {Key: "action_taken", Value: 1}}, Options: options.Index().SetName("event_type_action_taken")},
	} {
		if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("create audit indexes: %w", err)
		}
	}
	return nil
}

func filter(eventType, clientIP, clientPattern string) bson.D {
	f := bson.D{}
	if eventType != "" {
		f = append(f, bson.E{Key: "event_type", Value: eventType})
	}
	if clientIP != "" {
		f = append(f, bson.E{Key: "client_ip", Value: clientIP})
	}
	if clientPattern != "" {
		f = append(f, bson.E{Key: "client_ip", Value: bson.D{{Key: "$regex", Value: clientPattern}}})
	}
	return f
}

// Logs returns entries matching q, newest first.
func (l *Log) Logs(ctx context.Context, q Query) ([]Entry, error) {
	cur, err := l.coll.Find(ctx, filter(q.EventType, q.ClientIP, q.ClientPattern), options.Find().
		SetSort(bson.D{{Key: "timestamp", Value: -1}, {Key: "_id", Value: -1}}).
		SetSkip(int64(q.Offset)).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, fmt.Errorf("audit logs: %w", err)
	}
	out := []Entry{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("audit logs: %w", err)
	}
	return out, nil
}

// Actions counts request entries by the action taken, over the whole log.
func (l *Log) Actions(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, a := range []string{Allowed, Throttled, Blocked} {
		n, err := l.coll.CountDocuments(ctx, bson.D{{Key: "event_type", Value: TypeRequest}, {Key: "action_taken", Value: a}})
		if err != nil {
			return nil, fmt.Errorf("audit actions: %w", err)
		}
		out[a] = n
	}
	return out, nil
}

// Stats counts entries by type.
func (l *Log) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	var err error
	if s.Requests, err = l.coll.CountDocuments(ctx, filter(TypeRequest, "", "")); err != nil {
		return s, fmt.Errorf("audit stats: %w", err)
	}
	if s.AdminActions, err = l.coll.CountDocuments(ctx, filter(TypeAdminAction, "", "")); err != nil {
		return s, fmt.Errorf("audit stats: %w", err)
	}
	s.Total = s.Requests + s.AdminActions
	return s, nil
}
