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

	"github.com/bulwarkgw/bulwark/shared/clientid"
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

	mu      sync.Mutex
	series  map[int64]wire.Point
	totals  wire.Totals
	last    string       // the newest stream entry read
	pending []wire.Event // arrived since the last frame
	recent  []wire.Event // the newest events, oldest first (at most RecentEvents)
	seen    []sighting   // events in the history window, oldest first
	bans    []wire.Ban
	bansAt  time.Time
}

// RecentEvents is how many events a new browser's first frame carries.
const RecentEvents = 200

// maxSeen bounds the events remembered for the history window.
const maxSeen = 100_000

// sighting is what the panels need of one event.
type sighting struct {
	ts       int64
	n        int64  // the requests it stands for (a folded event's count)
	client   string // the event's client as bans are listed: its IP, or its /64 for IPv6
	geo      wire.Geo
	score    float64
	scored   bool
	blocking bool
	reasons  []wire.Reason
}

// New returns an aggregator reading keys under opt.Prefix.
func New(rdb redis.UniversalClient, opt Options, log *slog.Logger) (*Aggregator, error) {
	if rdb == nil || log == nil {
		return nil, errors.New("live: nil redis client or logger")
	}
	return &Aggregator{rdb: rdb, opt: opt, log: log, series: map[int64]wire.Point{}, last: "$"}, nil
}

// Load reads the whole history window of stats and of the event stream;
// call it once before Follow and the first Tick.
func (a *Aggregator) Load(ctx context.Context, now time.Time) error {
	if err := a.read(ctx, now, History); err != nil {
		return err
	}
	start := strconv.FormatInt(now.Add(-History*time.Second).UnixMilli(), 10)
	msgs, err := a.rdb.XRangeN(ctx, wire.StreamKey(a.opt.Prefix), start, "+", maxSeen).Result()
	if err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	for _, m := range msgs {
		a.add(m)
	}
	a.mu.Lock()
	a.pending = nil // already in recent: the first frame carries them
	if len(msgs) > 0 {
		a.last = msgs[len(msgs)-1].ID
	} else {
		// Follow from here, not from the stream's end at some later moment.
		a.last = strconv.FormatInt(now.UnixMilli(), 10) + "-0"
	}
	a.mu.Unlock()
	return nil
}

// DropBan forgets ip's ban at once (it was lifted here) instead of at the
// next listing.
func (a *Aggregator) DropBan(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keep := make([]wire.Ban, 0, len(a.bans))
	for _, b := range a.bans {
		if b.IP != ip {
			keep = append(keep, b)
		}
	}
	a.bans = keep
}

// SetBans replaces the active bans, as listed at now.
func (a *Aggregator) SetBans(bans []wire.Ban, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bans, a.bansAt = bans, now
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
	old := 0
	for old < len(a.seen) && a.seen[old].ts <= sec-History {
		old++
	}
	a.seen = append(a.seen[:0], a.seen[old:]...)

	base := wire.StatsFrame{
		TS: sec, Totals: a.totals,
		TopOffenders:   a.topOffenders(10),
		CostSaved:      float64(a.totals.Blocked) * a.opt.CostPerRequest,
		CostPerRequest: a.opt.CostPerRequest,
		ScoreHistogram: a.histogram(),
		Origins:        a.origins(),
		Bans:           a.activeBans(now),
	}
	delta, full = base, base
	delta.Series = a.points(sec-refresh+1, sec)
	full.Series = a.points(sec-History+1, sec)
	delta.Events = a.pending
	full.Events = append([]wire.Event{}, a.recent...)
	a.pending = nil
	if delta.Events == nil {
		delta.Events = []wire.Event{}
	}
	return delta, full, nil
}

// histogram buckets the window's scores.
func (a *Aggregator) histogram() []int64 {
	h := make([]int64, wire.ScoreBuckets)
	for _, s := range a.seen {
		if !s.scored {
			continue
		}
		b := int(s.score * wire.ScoreBuckets)
		h[max(0, min(b, wire.ScoreBuckets-1))] += s.n
	}
	return h
}

// origins counts the requests behind the window's events by country, each
// drawn at the mean of the coordinates its events carried.
func (a *Aggregator) origins() []wire.Origin {
	type acc struct {
		o        wire.Origin
		lat, lon float64
		located  int64
	}
	by := map[string]*acc{}
	for _, s := range a.seen {
		if s.geo.Country == "" {
			continue
		}
		c := by[s.geo.Country]
		if c == nil {
			c = &acc{o: wire.Origin{Country: s.geo.Country}}
			by[s.geo.Country] = c
		}
		c.o.Events += s.n
		if s.blocking {
			c.o.Blocks += s.n
		}
		if s.geo.Lat != 0 || s.geo.Lon != 0 {
			c.lat += s.geo.Lat
			c.lon += s.geo.Lon
			c.located++
		}
	}
	out := make([]wire.Origin, 0, len(by))
	for _, c := range by {
		if c.located == 0 {
			continue // nowhere to draw it
		}
		c.o.Lat, c.o.Lon = c.lat/float64(c.located), c.lon/float64(c.located)
		out = append(out, c.o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Events != out[j].Events {
			return out[i].Events > out[j].Events
		}
		return out[i].Country < out[j].Country
	})
	return out
}

// activeBans returns the last listed bans with their time left at now and
// what the window knows of each client.
func (a *Aggregator) activeBans(now time.Time) []wire.Ban {
	latest := map[string]*sighting{}
	for i := range a.seen {
		latest[a.seen[i].client] = &a.seen[i]
	}
	elapsed := int64(now.Sub(a.bansAt) / time.Second)
	out := make([]wire.Ban, 0, len(a.bans))
	for _, b := range a.bans {
		if b.TTLSeconds >= 0 {
			b.TTLSeconds -= max(0, elapsed)
			if b.TTLSeconds <= 0 {
				continue
			}
		}
		if s := latest[b.IP]; s != nil {
			b.Country, b.Score = s.geo.Country, s.score
		}
		out = append(out, b)
	}
	return out
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
	for _, o := range a.seen {
		if !o.blocking {
			continue
		}
		off := by[o.client]
		if off == nil {
			off = &wire.Offender{IP: o.client}
			by[o.client] = off
		}
		off.Blocks += o.n
		off.Score = o.score // the latest
		if len(o.reasons) > 0 {
			off.Reasons = o.reasons
		}
		if o.geo.Country != "" {
			off.Country = o.geo.Country
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

// Follow reads the event stream from where Load stopped (or from its end)
// until ctx ends, keeping new events for the next frame. Errors are logged
// and retried.
func (a *Aggregator) Follow(ctx context.Context) error {
	stream := wire.StreamKey(a.opt.Prefix)
	a.mu.Lock()
	last := a.last
	a.mu.Unlock()
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
	a.recent = append(a.recent, ev)
	if len(a.recent) > RecentEvents {
		a.recent = append(a.recent[:0], a.recent[len(a.recent)-RecentEvents:]...)
	}
	s := sighting{ts: ev.TS.Unix(), n: max(int64(ev.Count), 1), client: clientOf(ev.IP), score: ev.Score, reasons: topReasons(ev.Reasons, 3)}
	if ev.Geo != nil {
		s.geo = *ev.Geo
	}
	switch ev.Type {
	case wire.EventBan, wire.EventBlock, wire.EventDenyList, wire.EventBruteforceBlock:
		s.blocking = true
	}
	switch ev.Type {
	case wire.EventBan, wire.EventBlock, wire.EventThrottle, wire.EventShadowBlock:
		s.scored = !ev.Degraded || ev.Score > 0
	}
	if len(a.seen) < maxSeen {
		a.seen = append(a.seen, s)
	}
}

// clientOf spells an event's IP as its client, the way bans are listed and
// the gateways count: the address for IPv4, the /64 for IPv6 (an attacker
// rotating through its /64 is one offender, as it is one client to ban).
func clientOf(ip string) string {
	id, err := clientid.Parse(ip)
	if err != nil {
		return ip
	}
	return clientid.Display(id)
}

// topReasons returns the n reasons that contributed most (and at all).
func topReasons(rs []wire.Reason, n int) []wire.Reason {
	out := make([]wire.Reason, 0, n)
	for _, r := range rs {
		if r.Contribution > 0 {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Contribution > out[j].Contribution })
	if len(out) > n {
		out = out[:n]
	}
	return out
}
