// Package realip decides, in one place and from configuration, which address
// a request comes from. The TCP peer is the client unless it is a trusted
// proxy; only then are X-Forwarded-For (walked from the right, skipping
// trusted hops) and X-Real-IP believed. Every layer of the gateway (counts,
// bans, scores, events) uses this one answer, and Forwarding turns it into
// the X-Forwarded-For chain the upstream is told.
package realip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/bulwarkgw/bulwark/shared/clientid"
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
	client, _, _, _ := res.resolve(r)
	return client
}

// Forwarding returns the client of r (as IP does), whether the TCP peer is
// a trusted proxy, and the X-Forwarded-For chain to pass on: the client,
// then each proxy the request is known to have come through, ending with
// the peer.
//
// From an untrusted peer the chain is the peer alone: what it sent is its
// own claim. From a trusted proxy the received chain is kept from the hop
// the walk chose as the client rightward and the peer is appended, as
// nginx's $proxy_add_x_forwarded_for does, except that the hops left of
// the client are dropped: the client wrote them and nobody checked them, so
// an upstream that reads the left-most entry still finds the client the
// gateway counted. When the client was named by Forwarded or X-Real-IP the
// chain is the client, then the peer.
func (res *Resolver) Forwarding(r *http.Request) (client netip.Addr, chain string, trusted bool) {
	client, peer, trusted, hops := res.resolve(r)
	switch {
	case !client.IsValid():
		return client, "", trusted
	case !trusted || client == peer:
		return client, client.String(), trusted
	}
	var b strings.Builder
	if len(hops) == 0 {
		hops = []netip.Addr{client}
	}
	for _, h := range hops {
		b.WriteString(h.String())
		b.WriteString(", ")
	}
	b.WriteString(peer.String())
	return client, b.String(), trusted
}

// resolve decides the client of r. hops is the part of X-Forwarded-For
// from the client rightward when the client came from it, else nil.
func (res *Resolver) resolve(r *http.Request) (client, peer netip.Addr, trusted bool, hops []netip.Addr) {
	peer = parseAddr(r.RemoteAddr)
	if !res.isTrusted(peer) {
		return peer, peer, false, nil
	}
	use := func(h string) bool { return res.only == "" || res.only == h }
	if xff := r.Header.Values(HeaderXForwardedFor); len(xff) > 0 && use(HeaderXForwardedFor) {
		a, hops, ok := res.fromXFF(xff)
		if !ok {
			return peer, peer, true, nil // a garbled chain: fall back to what we saw
		}
		return a, peer, true, hops
	}
	if fwd := r.Header.Values(HeaderForwarded); len(fwd) > 0 && use(HeaderForwarded) {
		if a, ok := res.fromForwarded(fwd); ok {
			return a, peer, true, nil
		}
		return peer, peer, true, nil
	}
	if xr := strings.TrimSpace(r.Header.Get(HeaderXRealIP)); xr != "" && use(http.CanonicalHeaderKey(HeaderXRealIP)) {
		if a := parseAddr(xr); a.IsValid() {
			return a, peer, true, nil
		}
	}
	return peer, peer, true, nil
}

// fromXFF walks X-Forwarded-For from the right: the nearest hop we do not
// trust is the client. Anything left of it was written by the client and
// proves nothing. It returns the client and the hops from it rightward;
// false for a garbled chain.
func (res *Resolver) fromXFF(values []string) (netip.Addr, []netip.Addr, bool) {
	hops := strings.Split(strings.Join(values, ","), ",")
	addrs := make([]netip.Addr, len(hops))
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			return netip.Addr{}, nil, false
		}
		addrs[i] = a
		if !res.isTrusted(a) || i == 0 {
			return a, addrs[i:], true
		}
	}
	return netip.Addr{}, nil, false // no hops: Values never holds none
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
// IPv6 zone, and unmaps IPv4-mapped IPv6. An address in the space the
// gateway keeps principals under (clientid.IsPrincipal: 0100::/8, reserved,
// never routed) is no client's and reads as none, so a forwarding header
// cannot pose as a principal.
func parseAddr(s string) netip.Addr {
	a := parseAnyAddr(s)
	if clientid.IsPrincipal(a) {
		return netip.Addr{}
	}
	return a
}

func parseAnyAddr(s string) netip.Addr {
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
