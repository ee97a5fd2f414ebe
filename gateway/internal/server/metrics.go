package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwarkgw/bulwark/gateway/internal/connlimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
)

// Metrics are the gateway's Prometheus metrics. A nil *Metrics records
// nothing, so tests need not build one.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	depErrs  *prometheus.CounterVec
	depTime  *prometheus.HistogramVec
	scoring  *prometheus.CounterVec

	redisTime, scorerTime prometheus.Observer
}

// NewMetrics registers the gateway's metrics in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_gateway_requests_total", Help: "Requests by route, decision and status code.",
		}, []string{"route", "decision", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bulwark_gateway_request_duration_seconds", Help: "Time from the first byte of a request to its response, upstream included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		depErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_gateway_dependency_errors_total", Help: "Failed calls to Redis, the scorer or an upstream; each one degraded a request.",
		}, []string{"dependency"}),
	}
	m.depTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bulwark_gateway_dependency_duration_seconds",
		Help:    "How long the request path waited on a dependency: redis (the traffic store's one round trip, queueing in the batcher included) and scorer (through the score cache; fast-path requests never ask). Failed calls included.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"dependency"})
	m.scoring = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulwark_gateway_scoring_total",
		Help: "How scored requests were scored: bound (under the throttle threshold whatever the scorer says, not sent), scorer (asked, through the score cache), fallback (the scorer could not answer); warm counts the crawler claims sent to the scorer in the background besides (not a decision).",
	}, []string{"path"})
	m.redisTime, m.scorerTime = m.depTime.WithLabelValues("redis"), m.depTime.WithLabelValues("scorer")
	m.reg.MustRegister(m.requests, m.latency, m.depErrs, m.depTime, m.scoring,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// GaugeFunc registers a gauge whose value fn reads at each scrape.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// CounterFunc registers a counter whose value fn reads at each scrape.
func (m *Metrics) CounterFunc(name, help string, fn func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

func (m *Metrics) observe(route, decision string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "none"
	}
	m.requests.WithLabelValues(route, decision, strconv.Itoa(code)).Inc()
	if code != http.StatusSwitchingProtocols { // a tunnel's lifetime is no response time
		m.latency.WithLabelValues(route).Observe(d.Seconds())
	}
}

// Refused counts a request refused before the chain (its framing): no
// route, the decision and the status code.
func (m *Metrics) Refused(decision string, code int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues("none", decision, strconv.Itoa(code)).Inc()
}

func (m *Metrics) dependencyError(dep string) {
	if m == nil {
		return
	}
	m.depErrs.WithLabelValues(dep).Inc()
}

// dependencyTime records how long the request path waited on dep, success
// or not: the distribution that tells whether a timeout fits the load.
func (m *Metrics) dependencyTime(dep string, d time.Duration) {
	if m == nil {
		return
	}
	switch dep { // the two hot ones without a label lookup
	case "redis":
		m.redisTime.Observe(d.Seconds())
	case "scorer":
		m.scorerTime.Observe(d.Seconds())
	default:
		m.depTime.WithLabelValues(dep).Observe(d.Seconds())
	}
}

func (m *Metrics) scored(path string) {
	if m == nil {
		return
	}
	m.scoring.WithLabelValues(path).Inc()
}

// Connections exports the connection limiter's counts (package connlimit),
// read once per scrape.
func (m *Metrics) Connections(stats func() connlimit.Stats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(connCollector(stats))
}

var (
	connOpenDesc = prometheus.NewDesc("bulwark_gateway_connections_open",
		"Client connections open now.", nil, nil)
	connIdleDesc = prometheus.NewDesc("bulwark_gateway_connections_idle",
		"Client connections open now and idle between keep-alive requests (reclaimable under pressure).", nil, nil)
	connMaxDesc = prometheus.NewDesc("bulwark_gateway_connections_max",
		"The most client connections open at once (connections.max, or derived from the open-file limit).", nil, nil)
	connRefusedDesc = prometheus.NewDesc("bulwark_gateway_connections_refused_total",
		"New client connections refused with 503: at the global limit, or at the per-address limit.", []string{"reason"}, nil)
	connReclaimedDesc = prometheus.NewDesc("bulwark_gateway_connections_reclaimed_total",
		"Idle keep-alive connections closed to make room for new ones.", nil, nil)
)

type connCollector func() connlimit.Stats

func (c connCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connOpenDesc, connIdleDesc, connMaxDesc, connRefusedDesc, connReclaimedDesc} {
		ch <- d
	}
}

func (c connCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	ch <- prometheus.MustNewConstMetric(connOpenDesc, prometheus.GaugeValue, float64(s.Open))
	ch <- prometheus.MustNewConstMetric(connIdleDesc, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(connMaxDesc, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(s.Refused), connlimit.ReasonGlobal)
	ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(s.RefusedPer), connlimit.ReasonPerAddress)
	ch <- prometheus.MustNewConstMetric(connReclaimedDesc, prometheus.CounterValue, float64(s.Reclaimed))
}

// Tunnels exports the tunnel registry's counts (package tunnels), read
// once per scrape.
func (m *Metrics) Tunnels(stats func() tunnels.Stats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(tunnelCollector(stats))
}

var (
	tunnelsOpenDesc = prometheus.NewDesc("bulwark_gateway_tunnels_open",
		"WebSocket tunnels open now (switched, not closed yet).", nil, nil)
	tunnelsClosedDesc = prometheus.NewDesc("bulwark_gateway_tunnels_closed_total",
		"Open tunnels closed because their client was banned (reason=ban) or a deny-listed network holds it (reason=deny), by this gateway or announced by another.", []string{"reason"}, nil)
)

type tunnelCollector func() tunnels.Stats

func (c tunnelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tunnelsOpenDesc
	ch <- tunnelsClosedDesc
}

func (c tunnelCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	ch <- prometheus.MustNewConstMetric(tunnelsOpenDesc, prometheus.GaugeValue, float64(s.Open))
	ch <- prometheus.MustNewConstMetric(tunnelsClosedDesc, prometheus.CounterValue, float64(s.ClosedBan), "ban")
	ch <- prometheus.MustNewConstMetric(tunnelsClosedDesc, prometheus.CounterValue, float64(s.ClosedDeny), "deny")
}
