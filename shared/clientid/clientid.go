// Package clientid says who a client is, one way for every service: an IPv4
// client is its address, an IPv6 client is its /64, so that a host rotating
// through the 2^64 addresses its network gives it stays one client.
//
// The gateways keep counts, bans and login failures in Redis under a
// client's Identity, and the dashboard and the admin tools read and lift
// them there, so all must compute it byte for byte alike: that is why it
// lives in shared. Identity is the key form (the /64's first address, as
// the Redis keys spell it), Display the human form ("2001:db8:1:2::/64";
// IPv4 stays a plain address), and Parse reads either back, or any address
// inside the /64.
package clientid

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Bits is the length of the prefix that names an IPv6 client.
const Bits = 64

// ErrInvalid is wrapped by every Parse error.
var ErrInvalid = errors.New("invalid client")

// Identity returns the address a client is kept under: ip itself for IPv4
// (IPv4-mapped IPv6 counts as IPv4), the first address of its /64 for IPv6.
// Zones are dropped. The zero Addr stays zero.
func Identity(ip netip.Addr) netip.Addr {
	if !ip.IsValid() {
		return ip
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return ip
	}
	p, _ := ip.Prefix(Bits)
	return p.Addr()
}

// Display spells ip's client for people and for the admin API: the address
// for IPv4 ("192.0.2.7"), the /64 for IPv6 ("2001:db8:1:2::/64"). It is ""
// for the zero Addr.
func Display(ip netip.Addr) string {
	id := Identity(ip)
	switch {
	case !id.IsValid():
		return ""
	case id.Is4():
		return id.String()
	case IsPrincipal(id):
		return displayPrincipal(id)
	}
	return netip.PrefixFrom(id, Bits).String()
}

// Parse reads a client as an operator names it: an IPv4 or IPv6 address
// (for IPv6, any address of the /64 names the /64), an IPv6 /64 such as
// "2001:db8:1:2::/64" (host bits may be set), or an IPv4 /32. IPv4-mapped
// IPv6 is read as IPv4 ("::ffff:192.0.2.7" or its /128). It returns the
// client's Identity. Zones, other prefix lengths and anything else are
// ErrInvalid, with a message that says why. A principal reads as Display
// spells it ("key:0123456789ab").
func Parse(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("%w %q: empty", ErrInvalid, s)
	}
	if id, ok, err := parsePrincipal(s); ok {
		return id, err
	}
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w %q: not an IP address or an IPv6 /64", ErrInvalid, s)
		}
		if ip.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("%w %q: a client address has no zone", ErrInvalid, s)
		}
		return Identity(ip), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		// ParsePrefix refuses zones too.
		return netip.Addr{}, fmt.Errorf("%w %q: not an IP address or an IPv6 /64", ErrInvalid, s)
	}
	ip, bits := p.Addr(), p.Bits()
	switch {
	case ip.Is4():
		if bits != 32 {
			return netip.Addr{}, fmt.Errorf("%w %q: an IPv4 client is one address (or its /32), not a /%d", ErrInvalid, s, bits)
		}
	case ip.Is4In6():
		if bits != 128 {
			return netip.Addr{}, fmt.Errorf("%w %q: an IPv4-mapped client is one address (or its /128), not a /%d", ErrInvalid, s, bits)
		}
	case bits != Bits:
		return netip.Addr{}, fmt.Errorf("%w %q: an IPv6 client is a /%d (or any address in it), not a /%d", ErrInvalid, s, Bits, bits)
	}
	return Identity(ip), nil
}

const hexGroup = `[0-9a-f]{1,4}`

// TextPattern returns a regular expression (RE2 and MongoDB $regex alike)
// that matches the text of every address of ip's client as netip.Addr's
// String spells it (RFC 5952: lower case, no leading zeros, the longest
// run of zero groups as "::"), which is how events and audit rows store a
// client's address, and the client's Display form; no other address's
// text. For IPv4 it matches the address alone.
//
// An IPv6 /64 is four fixed groups N0..N3 followed by four free ones, and
// RFC 5952 spells it one of three ways: with no "::" among N0..N3
// ("N0:N1:N2:N3:" and the host part), with "::" standing for a run of
// zeros inside N0..N3 (then the rest of the network groups and exactly
// four host groups), or with "::" standing for a run that starts in
// N0..N3, takes every network group after it and goes on into the host
// part (then at most four host groups). The pattern lists each that the
// /64's zero groups allow.
func TextPattern(ip netip.Addr) string {
	id := Identity(ip)
	if !id.IsValid() {
		return `^\b$` // matches nothing
	}
	if id.Is4() {
		return "^" + regexp.QuoteMeta(id.String()) + "$"
	}
	b := id.As16()
	var n [4]string
	zero := [4]bool{}
	for i := range n {
		g := uint16(b[2*i])<<8 | uint16(b[2*i+1])
		n[i] = fmt.Sprintf("%x", g)
		zero[i] = g == 0
	}
	alts := []string{
		regexp.QuoteMeta(Display(id)),
		strings.Join(n[:], ":") + ":[0-9a-f:]*",
	}
	for s := 0; s < 4; s++ {
		if !zero[s] || (s > 0 && zero[s-1]) {
			continue // not the start of a run of zero groups
		}
		e := s
		for e+1 < 4 && zero[e+1] {
			e++
		}
		head := strings.Join(n[:s], ":") + "::"
		if e < 3 {
			if e > s { // RFC 5952 never shortens a single zero group
				alts = append(alts, head+strings.Join(n[e+1:], ":")+"(:"+hexGroup+"){4}")
			}
			continue
		}
		// The run reaches N3 and may go on into the host part.
		alts = append(alts, head+"("+hexGroup+"(:"+hexGroup+"){0,3})?")
	}
	return "^(" + strings.Join(alts, "|") + ")$"
}

// Principals: a request with a verified credential (an API key, a JWT's
// subject) is counted, limited and banned as that principal, not as its
// address, so many principals behind one NAT or cloud egress address are
// judged apart and a principal's refusal never bans the address. A
// principal's identity is an address in 0100::/8, which IANA keeps
// reserved by the IETF (never routed, never a client's address; the
// RFC 6666 discard prefix 0100::/64 is left out: kinds start at 1): the
// second byte names the kind, the next six hold the first 48 bits of the
// SHA-256 of "kind:id". Every store that keeps clients by Identity keeps
// principals the same way, and Display spells one "key:0123456789ab".
// The gateway never takes such an address from the network (package
// realip refuses it).

// Principal kinds, as Display spells them.
const (
	KindKey = "key"
	KindJWT = "jwt"
)

var principalKinds = [...]string{1: KindKey, 2: KindJWT}

// Principal returns the identity of the principal id of the given kind
// (KindKey, KindJWT); the zero Addr for another kind or an empty id.
func Principal(kind, id string) netip.Addr {
	k := kindByte(kind)
	if k == 0 || id == "" {
		return netip.Addr{}
	}
	sum := sha256.Sum256([]byte(kind + ":" + id))
	var b [16]byte
	b[0], b[1] = 0x01, k
	copy(b[2:8], sum[:6])
	return netip.AddrFrom16(b)
}

func kindByte(kind string) byte {
	for i, k := range principalKinds {
		if k != "" && k == kind {
			return byte(i)
		}
	}
	return 0
}

// IsPrincipal reports whether a is a principal's identity (any address of
// its /64): 0101::/16 for API keys, 0102::/16 for JWT subjects.
func IsPrincipal(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() {
		return false
	}
	b := a.As16()
	return b[0] == 0x01 && int(b[1]) < len(principalKinds) && principalKinds[b[1]] != ""
}

// PrincipalKind returns the kind of a principal's identity, "" for a
// client address.
func PrincipalKind(a netip.Addr) string {
	if !IsPrincipal(a) {
		return ""
	}
	return principalKinds[a.As16()[1]]
}

func displayPrincipal(id netip.Addr) string {
	b := id.As16()
	return principalKinds[b[1]] + ":" + hex.EncodeToString(b[2:8])
}

// parsePrincipal reads "key:0123456789ab" back; ok is false when s is not
// of that form at all.
func parsePrincipal(s string) (netip.Addr, bool, error) {
	kind, h, found := strings.Cut(s, ":")
	k := kindByte(kind)
	if !found || k == 0 {
		return netip.Addr{}, false, nil
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 6 {
		return netip.Addr{}, true, fmt.Errorf("%w %q: a principal is %s: and 12 hex digits", ErrInvalid, s, kind)
	}
	var b [16]byte
	b[0], b[1] = 0x01, k
	copy(b[2:8], raw)
	return netip.AddrFrom16(b), true, nil
}
