// Package realip decides, in one place and from configuration, which address
// a request comes from. The TCP peer is the client unless it is a trusted
// proxy; only then are X-Forwarded-For (walked from the right, skipping
// trusted hops) and X-Real-IP believed. Every layer of the gateway (counts,
// bans, scores, events) uses this one answer.
package realip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds client addresses. The zero value trusts nobody.
type Resolver struct {
	trusted []netip.Prefix
	only    string // canonical header name, or "" for the default order
}

// New returns a Resolver that believes forwarding headers only from peers
// inside trusted.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// Headers a trusted proxy may name the client in.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
	HeaderXRealIP       = "X-Real-IP"
)

// WithHeader returns a resolver that believes only header from trusted
// proxies (like nginx's real_ip_header). Use it when the proxy in front sets
// one header and passes the others through from the client: with
// X-Real-IP set by the proxy and X-Forwarded-For copied from the client,
// believing X-Forwarded-For would let the client choose its address.
// "" believes X-Forwarded-For, then Forwarded, then X-Real-IP.
func WithHeader(trusted []netip.Prefix, header string) *Resolver {
	return &Resolver{trusted: trusted, only: http.CanonicalHeaderKey(header)}
}

// IP returns the client address of r. It never fails: a peer address that
// cannot be parsed yields the zero Addr, which callers treat as unknown.
func (res *Resolver) IP(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !res.isTrusted(peer) {
		return peer
	}
	use := func(h string) bool { return res.only == "" || res.only == h }
	if xff := r.Header.Values(HeaderXForwardedFor); len(xff) > 0 && use(HeaderXForwardedFor) {
		hops := strings.Split(strings.Join(xff, ","), ",")
		// Walk from the right: the nearest hop we do not trust is the client.
		// Anything left of it was written by the client and proves nothing.
		for i := len(hops) - 1; i >= 0; i-- {
			a := parseAddr(strings.TrimSpace(hops[i]))
			if !a.IsValid() {
				return peer // a garbled chain: fall back to what we saw
			}
			if !res.isTrusted(a) || i == 0 {
				return a
			}
		}
	}
	if fwd := r.Header.Values(HeaderForwarded); len(fwd) > 0 && use(HeaderForwarded) {
		if a, ok := res.fromForwarded(fwd); ok {
			return a
		}
		return peer
	}
	if xr := strings.TrimSpace(r.Header.Get(HeaderXRealIP)); xr != "" && use(http.CanonicalHeaderKey(HeaderXRealIP)) {
		if a := parseAddr(xr); a.IsValid() {
			return a
		}
	}
	return peer
}

// fromForwarded walks RFC 7239 Forwarded elements from the right, like
// X-Forwarded-For: the nearest for= that is not a trusted proxy is the
// client. Obfuscated identifiers ("_hidden", "unknown") and garbage end the
// walk without an answer.
func (res *Resolver) fromForwarded(values []string) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					hops = append(hops, strings.Trim(strings.TrimSpace(val), `"`))
				}
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(hops[i])
		if !a.IsValid() {
			return netip.Addr{}, false
		}
		if !res.isTrusted(a) || i == 0 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Extractor adapts the resolver to echo's IPExtractor signature.
func (res *Resolver) Extractor(r *http.Request) string {
	a := res.IP(r)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (res *Resolver) isTrusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr accepts "ip", "ip:port", "[ipv6]:port" and "[ipv6]", drops any
// IPv6 zone, and unmaps IPv4-mapped IPv6.
func parseAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	} else {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}
