package wire

// StatsFrame is what the dashboard pushes to every browser once a second.
type StatsFrame struct {
	// TS is the Unix second the frame describes.
	TS int64 `json:"ts"`
	// Totals since the dashboard started counting (its history window).
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

// Offender is one client and how often it was stopped.
type Offender struct {
	IP      string  `json:"ip"`
	Country string  `json:"country,omitempty"`
	Blocks  int64   `json:"blocks"`
	Score   float64 `json:"score"`
}
