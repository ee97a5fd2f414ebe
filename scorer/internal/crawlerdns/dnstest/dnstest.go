// Package dnstest runs a real DNS server (github.com/miekg/dns) on a free
// UDP port of 127.0.0.1 for tests: it serves the records a test gives it,
// counts the queries it gets, and can hold, drop or fail them.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// Server is a real DNS server on a free UDP port of 127.0.0.1 (Addr),
// serving the records a test gives it and counting the queries it gets.
type Server struct {
	Addr string

	mu       sync.Mutex
	records  map[string][]dns.RR // by question: "PTR 1.66.249.66.in-addr.arpa."
	servfail map[string]bool
	queries  map[string]int
	// gate, when set, holds every query until it is closed; each held
	// query first sends its question on held.
	gate chan struct{}
	held chan string
	// silent drops every query unanswered.
	silent bool
}

// Start starts a server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}, servfail: map[string]bool{}, queries: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	s.Addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() {
		s.mu.Lock()
		if s.gate != nil {
			select {
			case <-s.gate:
			default:
				close(s.gate)
			}
		}
		s.mu.Unlock()
		_ = srv.Shutdown()
	})
	return s
}

// Add adds a record in zone-file syntax.
func (s *Server) Add(t testing.TB, zone string) {
	t.Helper()
	rr, err := dns.NewRR(zone)
	require.NoError(t, err)
	h := rr.Header()
	key := dns.TypeToString[h.Rrtype] + " " + strings.ToLower(h.Name)
	s.mu.Lock()
	s.records[key] = append(s.records[key], rr)
	s.mu.Unlock()
}

// PTR adds PTR records for ip.
func (s *Server) PTR(t testing.TB, ip string, names ...string) {
	t.Helper()
	rev, err := dns.ReverseAddr(ip)
	require.NoError(t, err)
	for _, n := range names {
		s.Add(t, rev+" 300 IN PTR "+n)
	}
}

// Hold makes the server hold every query until release; each held
// query's question is sent on the returned channel first.
func (s *Server) Hold() <-chan string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.held = make(chan struct{}), make(chan string, 100)
	return s.held
}

// Release answers the held queries and every later one at once.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
}

// SetSilent makes the server drop (silent) or answer every query.
func (s *Server) SetSilent(silent bool) {
	s.mu.Lock()
	s.silent = silent
	s.mu.Unlock()
}

// Fail makes the server answer SERVFAIL to qtype queries for name.
func (s *Server) Fail(qtype, name string) {
	s.mu.Lock()
	s.servfail[qtype+" "+strings.ToLower(dns.Fqdn(name))] = true
	s.mu.Unlock()
}

// Count returns how many queries of type qtype for name arrived.
func (s *Server) Count(qtype, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[qtype+" "+strings.ToLower(dns.Fqdn(name))]
}

// Total returns how many queries arrived.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	key := dns.TypeToString[q.Qtype] + " " + strings.ToLower(q.Name)
	s.mu.Lock()
	s.queries[key]++
	gate, held, silent := s.gate, s.held, s.silent
	s.mu.Unlock()
	if gate != nil {
		if held != nil {
			held <- key
		}
		<-gate
	}
	if silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	switch {
	case s.servfail[key]:
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Answer = append(m.Answer, s.records[key]...)
		if len(m.Answer) == 0 && !s.nameExists(q.Name) {
			m.Rcode = dns.RcodeNameError
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}

// nameExists reports whether any record is held for name (of any type):
// such a name answers NOERROR with no records for other types, like a
// real zone.
func (s *Server) nameExists(name string) bool {
	for k := range s.records {
		if strings.HasSuffix(k, " "+strings.ToLower(name)) {
			return true
		}
	}
	return false
}
