package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the gateway's Prometheus metrics. A nil *Metrics records
// nothing, so tests need not build one.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	depErrs  *prometheus.CounterVec
	scoring  *prometheus.CounterVec
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
	m.scoring = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulwark_gateway_scoring_total",
		Help: "How scored requests were scored: bound (under the throttle threshold whatever the scorer says, not sent), scorer (asked, through the score cache), fallback (the scorer could not answer).",
	}, []string{"path"})
	m.reg.MustRegister(m.requests, m.latency, m.depErrs, m.scoring,
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
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) dependencyError(dep string) {
	if m == nil {
		return
	}
	m.depErrs.WithLabelValues(dep).Inc()
}

func (m *Metrics) scored(path string) {
	if m == nil {
		return
	}
	m.scoring.WithLabelValues(path).Inc()
}
