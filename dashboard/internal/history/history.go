// Package history answers questions about past security events from
// MongoDB (bulwark.events). Every query walks one of the indexes the
// gateway creates (ip+ts when an IP is given, type+ts when a type is given,
// ts otherwise) newest first, and uses only operations that both MongoDB and
// the FerretDB test server support: find with sort and limit, and
// aggregations of $match and $group with one $sum.
// Counts are of requests: an event folded by the gateway stands for its
// count of them.
package history

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// MaxLimit caps one page of events, and the number of top IPs.
const MaxLimit = 500

// ErrBadCursor is returned for a cursor this package did not make.
var ErrBadCursor = errors.New("history: malformed cursor")

// Query selects events, newest first. Zero fields do not filter.
type Query struct {
	From, To time.Time // From ≤ ts < To
	Type     wire.EventType
	IP       string  // an address (its events), or an IPv6 /64 as "2001:db8:1:2::/64" (every address's in it)
	Country  string  // geo.country, ISO code
	Route    string  // path prefix on segment boundaries ("/api" takes /api and /api/x)
	MinScore float64 // score ≥ MinScore
	After    Cursor  // continue after this event (from a previous page's Next)
	Limit    int     // 1..MaxLimit
}

// Cursor marks the last event of a page: the next page holds events older
// than it (by ts, then by id).
type Cursor struct {
	TS time.Time
	ID string
}

// IsZero reports whether c marks nothing (the first page).
func (c Cursor) IsZero() bool { return c.ID == "" }

// String encodes c for a URL.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	raw := strconv.FormatInt(c.TS.UnixNano(), 10) + ":" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes what Cursor.String made.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	ns, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{TS: time.Unix(0, n).UTC(), ID: id}, nil
}

// Page is one page of events and the cursor of the next (zero when this is
// the last).
type Page struct {
	Events []wire.Event
	Next   Cursor
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

// Collection is the events collection the store reads.
func (s *Store) Collection() *mongo.Collection { return s.coll }

func (q Query) filter() bson.D {
	f := bson.D{}
	if q.IP != "" {
		f = append(f, ipFilter(q.IP))
	}
	if q.Type != "" {
		f = append(f, bson.E{Key: "type", Value: string(q.Type)})
	}
	f = append(f, timeRange(q.From, q.To)...)
	if q.Country != "" {
		f = append(f, bson.E{Key: "geo.country", Value: q.Country})
	}
	if q.Route != "" {
		prefix := strings.TrimSuffix(q.Route, "/")
		f = append(f, bson.E{Key: "path", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(prefix) + "(/|$)"}}})
	}
	if q.MinScore > 0 {
		f = append(f, bson.E{Key: "score", Value: bson.D{{Key: "$gte", Value: q.MinScore}}})
	}
	if !q.After.IsZero() {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "ts", Value: bson.D{{Key: "$lt", Value: q.After.TS}}}},
			bson.D{{Key: "ts", Value: q.After.TS}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: q.After.ID}}}},
		}})
	}
	return f
}

func timeRange(from, to time.Time) bson.D {
	r := bson.D{}
	if !from.IsZero() {
		r = append(r, bson.E{Key: "$gte", Value: from})
	}
	if !to.IsZero() {
		r = append(r, bson.E{Key: "$lt", Value: to})
	}
	if len(r) == 0 {
		return nil
	}
	return bson.D{{Key: "ts", Value: r}}
}

// Events returns the newest events matching q, and the cursor of the next
// page when there may be one.
func (s *Store) Events(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 || q.Limit > MaxLimit {
		return Page{}, fmt.Errorf("history: limit %d outside [1, %d]", q.Limit, MaxLimit)
	}
	// One more than asked tells whether there is a next page.
	cur, err := s.coll.Find(ctx, q.filter(), options.Find().
		SetSort(bson.D{{Key: "ts", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(q.Limit+1)))
	if err != nil {
		return Page{}, fmt.Errorf("find events: %w", err)
	}
	evs := []wire.Event{}
	if err := cur.All(ctx, &evs); err != nil {
		return Page{}, fmt.Errorf("read events: %w", err)
	}
	p := Page{Events: evs}
	if len(evs) > q.Limit {
		p.Events = evs[:q.Limit]
		last := p.Events[q.Limit-1]
		p.Next = Cursor{TS: last.TS, ID: last.ID}
	}
	return p, nil
}

// Count is how many requests the events sharing a key (a type, a country,
// an IP) stand for.
type Count struct {
	Key string `json:"key"`
	N   int64  `json:"n"`
}

// TopIP is one client with its request count and country.
type TopIP struct {
	IP      string `json:"ip"`
	Country string `json:"country,omitempty"`
	N       int64  `json:"n"`
}

// Stats summarises the events in [From, To).
type Stats struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Total   int64     `json:"total"`
	ByType  []Count   `json:"by_type"`
	Country []Count   `json:"by_country"`
	TopIPs  []TopIP   `json:"top_ips"`
}

// Stats counts the requests behind the events in [from, to) by type, by
// country and by IP (the top n IPs). Each is one aggregation over the ts
// index.
func (s *Store) Stats(ctx context.Context, from, to time.Time, n int) (Stats, error) {
	if n < 1 || n > MaxLimit {
		return Stats{}, fmt.Errorf("history: top %d outside [1, %d]", n, MaxLimit)
	}
	match := timeRange(from, to)
	st := Stats{From: from, To: to}
	var err error
	if st.ByType, err = s.countBy(ctx, match, "$type", 0); err != nil {
		return Stats{}, err
	}
	for _, c := range st.ByType {
		st.Total += c.N
	}
	if st.Country, err = s.countBy(ctx, match, "$geo.country", 0); err != nil {
		return Stats{}, err
	}
	top, err := s.countBy(ctx, match, "$ip", n)
	if err != nil {
		return Stats{}, err
	}
	st.TopIPs = make([]TopIP, 0, len(top))
	ips := bson.A{}
	for _, c := range top {
		st.TopIPs = append(st.TopIPs, TopIP{IP: c.Key, N: c.N})
		ips = append(ips, c.Key)
	}
	if len(ips) == 0 {
		return st, nil
	}
	// The top IPs' countries: group by ip and country together ($first and
	// $max inside $group are not portable) and keep each IP's most frequent.
	// (Rows come most frequent first; a tie keeps the first.)
	inTop := append(timeRange(from, to), bson.E{Key: "ip", Value: bson.D{{Key: "$in", Value: ips}}})
	pairs, err := s.group(ctx, inTop, bson.D{{Key: "ip", Value: "$ip"}, {Key: "country", Value: "$geo.country"}}, 0)
	if err != nil {
		return Stats{}, err
	}
	best := map[string]int64{}
	country := map[string]string{}
	for _, p := range pairs {
		var id struct {
			IP      string `bson:"ip"`
			Country string `bson:"country"`
		}
		if p.ID.Unmarshal(&id) != nil || id.Country == "" {
			continue
		}
		if p.N > best[id.IP] {
			best[id.IP], country[id.IP] = p.N, id.Country
		}
	}
	for i := range st.TopIPs {
		st.TopIPs[i].Country = country[st.TopIPs[i].IP]
	}
	return st, nil
}

// groupRow is one group: its key and the requests its events stand for.
type groupRow struct {
	ID bson.RawValue
	N  int64
}

// group counts the requests behind the events matching filter by key, most
// first (ties by key), the first limit of them (all with limit 0).
//
// An event stands for count requests, or one without a count. MongoDB
// would sum {$ifNull: ["$count", 1]}, but FerretDB v1 has no conditional
// operator (and returns 0 for the second accumulator of a $group), so two
// aggregations each sum one thing: the events without a count, and the
// counts of those with one. Their rows are joined, sorted and cut here, so
// every key's rows cross the wire.
func (s *Store) group(ctx context.Context, filter bson.D, key any, limit int) ([]groupRow, error) {
	byKey := map[string]*groupRow{}
	var rows []*groupRow
	for _, part := range []struct {
		counted bool
		sum     any
	}{{false, 1}, {true, "$count"}} {
		match := append(append(bson.D{}, filter...), bson.E{Key: "count", Value: bson.D{{Key: "$exists", Value: part.counted}}})
		cur, err := s.coll.Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: match}},
			{{Key: "$group", Value: bson.D{{Key: "_id", Value: key}, {Key: "n", Value: bson.D{{Key: "$sum", Value: part.sum}}}}}},
		})
		if err != nil {
			return nil, fmt.Errorf("aggregate events by %v: %w", key, err)
		}
		var raw []struct {
			ID bson.RawValue `bson:"_id"`
			N  int64         `bson:"n"`
		}
		if err := cur.All(ctx, &raw); err != nil {
			return nil, fmt.Errorf("read events by %v: %w", key, err)
		}
		for _, r := range raw {
			k := keyString(r.ID)
			g := byKey[k]
			if g == nil {
				g = &groupRow{ID: r.ID}
				byKey[k] = g
				rows = append(rows, g)
			}
			g.N += r.N
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].N != rows[j].N {
			return rows[i].N > rows[j].N
		}
		return keyString(rows[i].ID) < keyString(rows[j].ID)
	})
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	out := make([]groupRow, len(rows))
	for i, g := range rows {
		out[i] = *g
	}
	return out, nil
}

// keyString identifies a group key; a missing field and null are one key.
func keyString(v bson.RawValue) string {
	if v.Type == 0 || v.Type == bson.TypeNull {
		return ""
	}
	if str, ok := v.StringValueOK(); ok {
		return str
	}
	return v.String()
}

func (s *Store) countBy(ctx context.Context, filter bson.D, field string, limit int) ([]Count, error) {
	rows, err := s.group(ctx, filter, field, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Count, 0, len(rows))
	for _, r := range rows {
		k, _ := r.ID.StringValueOK() // "" for events without the field
		out = append(out, Count{Key: k, N: r.N})
	}
	return out, nil
}

// ipFilter selects the events of ip: one address as events spell it, or,
// for an IPv6 /64 ("2001:db8:1:2::/64"), the events of every address in it
// and those recorded for the /64 itself (admin bans and unbans), by
// clientid.TextPattern, a regular expression anchored on the /64's first
// groups.
func ipFilter(ip string) bson.E {
	if strings.Contains(ip, "/") {
		if id, err := clientid.Parse(ip); err == nil && id.Is6() {
			return bson.E{Key: "ip", Value: bson.D{{Key: "$regex", Value: clientid.TextPattern(id)}}}
		}
	}
	return bson.E{Key: "ip", Value: ip}
}

// Client is everything the history knows about one IP.
type Client struct {
	Events []wire.Event `json:"events"`
	ByType []Count      `json:"by_type"`
	// Latest is the newest event carrying a score with reasons: the
	// features and contributions behind the client's latest decision.
	Latest *wire.Event `json:"latest,omitempty"`
	// Geo is the newest geo seen for the client.
	Geo *wire.Geo `json:"geo,omitempty"`
}

// Client returns the newest limit events of ip (an address, or an IPv6 /64
// as Query.IP takes it), its counts by type, its latest scored event and
// its geo. All queries use the ip+ts index.
func (s *Store) Client(ctx context.Context, ip string, limit int) (Client, error) {
	page, err := s.Events(ctx, Query{IP: ip, Limit: limit})
	if err != nil {
		return Client{}, err
	}
	c := Client{Events: page.Events}
	if c.ByType, err = s.countBy(ctx, bson.D{ipFilter(ip)}, "$type", 0); err != nil {
		return Client{}, err
	}
	for i := range c.Events {
		e := &c.Events[i]
		if c.Latest == nil && len(e.Reasons) > 0 {
			c.Latest = e
		}
		if c.Geo == nil && e.Geo != nil {
			c.Geo = e.Geo
		}
	}
	if c.Latest == nil {
		var e wire.Event
		err := s.coll.FindOne(ctx, bson.D{ipFilter(ip), {Key: "reasons.0", Value: bson.D{{Key: "$exists", Value: true}}}},
			options.FindOne().SetSort(bson.D{{Key: "ts", Value: -1}})).Decode(&e)
		switch {
		case err == nil:
			c.Latest = &e
			if c.Geo == nil {
				c.Geo = e.Geo
			}
		case !errors.Is(err, mongo.ErrNoDocuments):
			return Client{}, fmt.Errorf("latest score of %s: %w", ip, err)
		}
	}
	return c, nil
}
