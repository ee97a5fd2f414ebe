package wire

// ScoreRequest carries what the gateway observed about one client, gathered
// from Redis in the request's single round trip. The scorer is stateless:
// everything it needs is in here.
type ScoreRequest struct {
	IP string `json:"ip"`
	// Requests counted in sliding windows ending now.
	Count1s  int64 `json:"count_1s"`
	Count10s int64 `json:"count_10s"`
	Count60s int64 `json:"count_60s"`
	// Optional context about the current request.
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// ScoreResponse is the scorer's verdict: a score in [0, 1], every feature's
// part in it sorted by contribution (largest first), and the client's geo.
type ScoreResponse struct {
	Score   float64  `json:"score"`
	Reasons []Reason `json:"reasons"`
	Geo     *Geo     `json:"geo,omitempty"`
}
