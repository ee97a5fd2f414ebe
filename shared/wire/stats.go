package wire

// StatsFrame is what the dashboard pushes to every browser once a second.
type StatsFrame struct {
	// TS is the Unix second the frame describes.
	TS int64 `json:"ts"`
	// Totals are all-time counts, summed over every gateway
	// (StatsTotalKey).
	Totals Totals `json:"totals"`
	// Series holds one point per second, oldest first. The first frame a
	// browser receives carries the whole history window; later frames carry
	// only the newest points.
	Series []Point `json:"series"`
	// Events that arrived on the live stream since the previous frame.
	Events []Event `json:"events"`
	// TopOffenders are the clients with the most blocks in the history window.
	TopOffenders []Offender `json:"top_offenders"`
	// CostSaved is blocked requests × the configured backend cost per request.
	CostSaved float64 `json:"cost_saved"`
	// CostPerRequest is the configured backend cost of one request.
	CostPerRequest float64 `json:"cost_per_request,omitempty"`
	// ScoreHistogram counts the scores of the events in the history window
	// in ScoreBuckets equal buckets over [0, 1] (the last one includes 1).
	ScoreHistogram []int64 `json:"score_histogram,omitempty"`
	// Origins are the countries the history window's events came from.
	Origins []Origin `json:"origins,omitempty"`
	// Bans are the bans active now, the longest-lasting first.
	Bans []Ban `json:"bans,omitempty"`
}

// ScoreBuckets is the number of buckets in StatsFrame.ScoreHistogram.
const ScoreBuckets = 10

// Origin is one country events came from: where to draw its marker and how
// many requests its events stand for (a folded event counts its Count).
type Origin struct {
	Country string  `json:"country"`
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	Events  int64   `json:"events"`
	Blocks  int64   `json:"blocks"`
}

// Ban is one active ban.
type Ban struct {
	// IP is the banned client: its address, or for IPv6 its /64
	// ("2001:db8:1:2::/64"; package clientid).
	IP string `json:"ip"`
	// TTLSeconds is the time left; -1 for a ban without expiry.
	TTLSeconds int64 `json:"ttl_seconds"`
	// Reason is what the gateway stored with the ban (e.g. "score 0.93").
	Reason  string  `json:"reason,omitempty"`
	Country string  `json:"country,omitempty"`
	Score   float64 `json:"score,omitempty"`
}

// Totals are running counts.
type Totals struct {
	Requests  int64 `json:"requests"`
	Allowed   int64 `json:"allowed"`
	Throttled int64 `json:"throttled"`
	Blocked   int64 `json:"blocked"`
	Bans      int64 `json:"bans"`
}

// Point is one second of gateway traffic, summed over every gateway.
type Point struct {
	TS        int64 `json:"ts"`
	Requests  int64 `json:"requests"`
	Allowed   int64 `json:"allowed"`
	Throttled int64 `json:"throttled"`
	Blocked   int64 `json:"blocked"`
}

// Offender is one client and how often it was stopped. IP is the client:
// its address, or for IPv6 its /64 ("2001:db8:1:2::/64").
type Offender struct {
	IP      string  `json:"ip"`
	Country string  `json:"country,omitempty"`
	Blocks  int64   `json:"blocks"`
	Score   float64 `json:"score"`
	// Reasons of the latest score, largest contribution first (at most 3).
	Reasons []Reason `json:"reasons,omitempty"`
}
