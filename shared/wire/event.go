package wire

import "time"

// EventType names what happened to a client.
type EventType string

// Event types. Every security-relevant outcome at the gateway is one of these.
const (
	EventBlock           EventType = "block"
	EventThrottle        EventType = "throttle"
	EventBan             EventType = "ban"
	EventUnban           EventType = "unban"
	EventDenyList        EventType = "deny_list"
	EventAuthFailure     EventType = "auth_failure"
	EventBruteforceBlock EventType = "bruteforce_block"
	EventKeyIssued       EventType = "key_issued"
	EventKeyInvalid      EventType = "key_invalid"
	EventShadowBlock     EventType = "shadow_block"
	EventAdmin           EventType = "admin"
)

// Event is one security event. ID is unique and doubles as the MongoDB _id,
// so re-sending a batch after a failure can never create duplicates.
type Event struct {
	ID        string    `json:"id" bson:"_id"`
	TS        time.Time `json:"ts" bson:"ts"`
	Type      EventType `json:"type" bson:"type"`
	IP        string    `json:"ip" bson:"ip"`
	Geo       *Geo      `json:"geo,omitempty" bson:"geo,omitempty"`
	Method    string    `json:"method,omitempty" bson:"method,omitempty"`
	Host      string    `json:"host,omitempty" bson:"host,omitempty"`
	Path      string    `json:"path,omitempty" bson:"path,omitempty"`
	Route     string    `json:"route,omitempty" bson:"route,omitempty"`
	Status    int       `json:"status,omitempty" bson:"status,omitempty"`
	Score     float64   `json:"score" bson:"score"`
	Reasons   []Reason  `json:"reasons,omitempty" bson:"reasons,omitempty"`
	KeyID     string    `json:"key_id,omitempty" bson:"key_id,omitempty"`
	Login     string    `json:"login,omitempty" bson:"login,omitempty"`
	UserAgent string    `json:"user_agent,omitempty" bson:"user_agent,omitempty"`
	Gateway   string    `json:"gateway,omitempty" bson:"gateway,omitempty"`
	RequestID string    `json:"request_id,omitempty" bson:"request_id,omitempty"`
	Shadow    bool      `json:"shadow,omitempty" bson:"shadow,omitempty"`
	// Degraded is set when a dependency (scorer, Redis) was unavailable and
	// the decision was taken by a fallback.
	Degraded bool `json:"degraded,omitempty" bson:"degraded,omitempty"`
	// Count is how many requests the event stands for: the gateway folds
	// repeats (same client, type, route and status within its aggregation
	// window) into one event carrying the newest request's details. 0 and 1
	// both mean one request; a folded event has Count ≥ 2, and FirstTS is
	// the time of the first request it stands for (TS is the last).
	Count   int       `json:"count,omitempty" bson:"count,omitempty"`
	FirstTS time.Time `json:"first_ts,omitzero" bson:"first_ts,omitempty"`
}

// Geo is what a GeoIP lookup knows about an address. Local is true for
// private, loopback and link-local addresses, which carry no geo risk.
type Geo struct {
	Country string  `json:"country,omitempty" bson:"country,omitempty"`
	City    string  `json:"city,omitempty" bson:"city,omitempty"`
	Lat     float64 `json:"lat,omitempty" bson:"lat,omitempty"`
	Lon     float64 `json:"lon,omitempty" bson:"lon,omitempty"`
	ASN     uint    `json:"asn,omitempty" bson:"asn,omitempty"`
	Org     string  `json:"org,omitempty" bson:"org,omitempty"`
	Local   bool    `json:"local,omitempty" bson:"local,omitempty"`
}

// Reason explains one feature's part in a score: the observed value and how
// much of the final score it accounts for.
type Reason struct {
	Feature      string  `json:"feature" bson:"feature"`
	Value        float64 `json:"value" bson:"value"`
	Contribution float64 `json:"contribution" bson:"contribution"`
}
