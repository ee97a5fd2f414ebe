package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// dnsServer answers the reverse and forward DNS of the simulator's
// crawlers, so that a scorer pointed at it (BULWARK_DNS_SERVER) verifies
// them by forward-confirmed reverse DNS as it would the real ones: PTR
// of the address gives the crawler's host name, whose A record gives the
// address back. Any other name does not exist (NXDOMAIN); a name that
// exists answers other types empty (NOERROR), like a real zone.
type dnsServer struct {
	srv     *dns.Server
	records map[string][]dns.RR // by "TYPE name."
	names   map[string]bool
	queries atomic.Int64 // answered, for the run's summary
}

// crawlerRecords returns the PTR and A records for every client of the
// mix whose scenario has a PTR name.
func crawlerRecords(mix map[string]int, addrs map[string][]netip.Addr) ([]dns.RR, error) {
	var out []dns.RR
	for _, sc := range Scenarios {
		if sc.PTR == nil {
			continue
		}
		for _, a := range addrs[sc.Name][:mix[sc.Name]] {
			name := dns.Fqdn(sc.PTR(a))
			rev, err := dns.ReverseAddr(a.String())
			if err != nil {
				return nil, err
			}
			out = append(out,
				&dns.PTR{Hdr: dns.RR_Header{Name: rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 300}, Ptr: name},
				&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IP(a.AsSlice())})
		}
	}
	return out, nil
}

// startDNS serves records over UDP on addr (host:port; port 0 picks one)
// until close; the server's address is returned.
func startDNS(addr string, records []dns.RR) (*dnsServer, string, error) {
	s := &dnsServer{records: map[string][]dns.RR{}, names: map[string]bool{}}
	for _, rr := range records {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		s.records[dns.TypeToString[h.Rrtype]+" "+name] = append(s.records[dns.TypeToString[h.Rrtype]+" "+name], rr)
		s.names[name] = true
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("-dns-listen: %w", err)
	}
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		return nil, "", fmt.Errorf("-dns-listen: %w", err)
	}
	return s, pc.LocalAddr().String(), nil
}

func (s *dnsServer) close() { _ = s.srv.Shutdown() }

func (s *dnsServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
	} else {
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		m.Answer = s.records[dns.TypeToString[q.Qtype]+" "+name]
		if !s.names[name] {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}
