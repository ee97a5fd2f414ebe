// Package live turns what the gateways publish to Redis (per-second stats
// hashes and the event stream) into the stats frames the dashboard pushes
// to browsers once a second. It keeps a five-minute history so a browser
// that connects gets full charts at once.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// History is how many seconds of series a new browser receives.
const History = 300

// refresh is how many recent seconds are re-read every tick: gateways flush
// their counters twice a second, so the newest seconds still change.
const refresh = 5

// Options configures an Aggregator.
type Options struct {
	Prefix         string
	CostPerRequest float64
}

// Aggregator keeps the live picture.
type Aggregator struct {
	rdb redis.UniversalClient
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	series   map[int64]wire.Point
	totals   wire.Totals
	pending  []wire.Event // arrived since the last frame
	blocking []offense    // blocking events in the history window
}

type offense struct {
	ts      int64
	ip      string
	country string
	score   float64
}

// New returns an aggregator reading keys under opt.Prefix.
func New(rdb redis.UniversalClient, opt Options, log *slog.Logger) (*Aggregator, error) {
	if rdb == nil || log == nil {
		return nil, errors.New("live: nil redis client or logger")
	}
	return &Aggregator{rdb: rdb, opt: opt, log: log, series: map[int64]wire.Point{}}, nil
}

// Load reads the whole history window; call it once before the first Tick.
func (a *Aggregator) Load(ctx context.Context, now time.Time) error {
	return a.read(ctx, now, History)
}

// Tick re-reads the newest seconds and returns the frame for connected
// browsers (the newest points and the new events) and the full frame for
// browsers that join before the next tick.
func (a *Aggregator) Tick(ctx context.Context, now time.Time) (delta, full wire.StatsFrame, err error) {
	if err := a.read(ctx, now, refresh); err != nil {
		return wire.StatsFrame{}, wire.StatsFrame{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sec := now.Unix()
	for ts := range a.series {
		if ts <= sec-History {
			delete(a.series, ts)
		}
	}
	keep := a.blocking[:0]
	for _, o := range a.blocking {
		if o.ts > sec-History {
			keep = append(keep, o)
		}
	}
	a.blocking = keep

	base := wire.StatsFrame{
		TS: sec, Totals: a.totals,
		TopOffenders: a.topOffenders(10),
		CostSaved:    float64(a.totals.Blocked) * a.opt.CostPerRequest,
	}
	delta, full = base, base
	delta.Series = a.points(sec-refresh+1, sec)
	full.Series = a.points(sec-History+1, sec)
	delta.Events = a.pending
	full.Events = []wire.Event{}
	a.pending = nil
	if delta.Events == nil {
		delta.Events = []wire.Event{}
	}
	return delta, full, nil
}

// points returns one point per second in [from, to], zero where no gateway
// reported.
func (a *Aggregator) points(from, to int64) []wire.Point {
	out := make([]wire.Point, 0, to-from+1)
	for ts := from; ts <= to; ts++ {
		p := a.series[ts]
		p.TS = ts
		out = append(out, p)
	}
	return out
}

func (a *Aggregator) topOffenders(n int) []wire.Offender {
	by := map[string]*wire.Offender{}
	for _, o := range a.blocking {
		off := by[o.ip]
		if off == nil {
			off = &wire.Offender{IP: o.ip}
			by[o.ip] = off
		}
		off.Blocks++
		off.Score = o.score // the latest
		if o.country != "" {
			off.Country = o.country
		}
	}
	out := make([]wire.Offender, 0, len(by))
	for _, o := range by {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Blocks != out[j].Blocks {
			return out[i].Blocks > out[j].Blocks
		}
		return out[i].IP < out[j].IP
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// read fetches the last n seconds of stats and the totals in one pipeline.
func (a *Aggregator) read(ctx context.Context, now time.Time, n int64) error {
	sec := now.Unix()
	cmds := make([]*redis.MapStringStringCmd, n)
	var total *redis.MapStringStringCmd
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.HGetAll(ctx, wire.StatsKey(a.opt.Prefix, sec-i))
		}
		total = p.HGetAll(ctx, wire.StatsTotalKey(a.opt.Prefix))
		return nil
	})
	if err != nil {
		return fmt.Errorf("read stats: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, c := range cmds {
		ts := sec - int64(i)
		m := c.Val()
		if len(m) == 0 {
			continue
		}
		a.series[ts] = wire.Point{
			TS: ts, Requests: num(m[wire.StatRequests]), Allowed: num(m[wire.StatAllowed]),
			Throttled: num(m[wire.StatThrottled]), Blocked: num(m[wire.StatBlocked]),
		}
	}
	m := total.Val()
	a.totals = wire.Totals{
		Requests: num(m[wire.StatRequests]), Allowed: num(m[wire.StatAllowed]),
		Throttled: num(m[wire.StatThrottled]), Blocked: num(m[wire.StatBlocked]), Bans: num(m[wire.StatBans]),
	}
	return nil
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Follow reads the event stream from its current end until ctx ends,
// keeping new events for the next frame. Errors are logged and retried.
func (a *Aggregator) Follow(ctx context.Context) error {
	stream := wire.StreamKey(a.opt.Prefix)
	last := "$"
	for ctx.Err() == nil {
		res, err := a.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, last}, Count: 500, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("event stream read failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for _, s := range res {
			for _, msg := range s.Messages {
				last = msg.ID
				a.add(msg)
			}
		}
	}
	return nil
}

func (a *Aggregator) add(msg redis.XMessage) {
	raw, _ := msg.Values[wire.StreamField].(string)
	var ev wire.Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		a.log.Warn("bad event on stream", "id", msg.ID, "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) < 1000 { // a frame carries at most this many events
		a.pending = append(a.pending, ev)
	}
	switch ev.Type {
	case wire.EventBan, wire.EventBlock, wire.EventDenyList, wire.EventBruteforceBlock:
		o := offense{ts: ev.TS.Unix(), ip: ev.IP, score: ev.Score}
		if ev.Geo != nil {
			o.country = ev.Geo.Country
		}
		if len(a.blocking) < 100_000 {
			a.blocking = append(a.blocking, o)
		}
	}
}
