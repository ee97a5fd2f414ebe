package wire

import (
	"net/netip"
	"strconv"

	"github.com/bulwarkgw/bulwark/shared/clientid"
)

// The gateways publish live data to Redis and the dashboard reads it; these
// key names are the contract between them. Every key starts with the
// deployment's prefix (default "bw:").
//
//   - StreamKey: a capped Redis Stream; each entry has one field, StreamField,
//     holding one Event as JSON.
//   - StatsKey(sec): a hash per Unix second whose fields (StatRequests, ...)
//     are summed over every gateway with HINCRBY; it expires after
//     StatsRetentionSeconds.
//   - StatsTotalKey: the same fields, summed over all time.
//   - BanKey(ip): a client's ban; the value says why, the TTL how long.
//   - BanIndexKey: a sorted set of the banned clients (member: the IP as
//     BanKey spells it, score: the ban's end in Unix ms, +inf for a ban
//     without expiry), so that bans are listed without scanning the
//     keyspace. Whoever sets or deletes a BanKey updates the index in the
//     same round trip; readers treat the ban key as the truth, skip (and
//     may remove) members whose key is gone and prune members whose score
//     has passed.
//   - ClientKey(ip): a client's traffic state, one string (ClientState).
//   - BanChannel: a pub/sub channel on which every new ban and every
//     network added to the deny list is announced (BanNotice), so that each
//     gateway closes the open tunnels of the client at once instead of
//     polling. Announcements are not stored: a subscriber that was
//     disconnected catches up from the ban index and the lists.

// StreamField is the stream entry field that holds the Event JSON.
const StreamField = "event"

// Stats hash fields.
const (
	StatRequests  = "requests"
	StatAllowed   = "allowed"
	StatThrottled = "throttled"
	StatBlocked   = "blocked"
	StatBans      = "bans"
)

// StatsRetentionSeconds is how long per-second stats hashes live.
const StatsRetentionSeconds = 900

// StreamKey names the live event stream.
func StreamKey(prefix string) string { return prefix + "events" }

// StatsKey names the stats hash of one Unix second.
func StatsKey(prefix string, sec int64) string {
	return prefix + "stats:" + strconv.FormatInt(sec, 10)
}

// StatsTotalKey names the all-time stats hash.
func StatsTotalKey(prefix string) string { return prefix + "stats:total" }

// ClientID is how every Redis key names a client: its identity
// (clientid.Identity: the IPv4 address, the first address of an IPv6 /64,
// or a principal's reserved address) as netip spells it. Every per-client
// key below is built from it, so one client has one spelling in Redis
// whoever writes the key.
func ClientID(ip netip.Addr) string { return clientid.Identity(ip).String() }

// ClientTag is ClientID hash-tagged, so that every key of one client lives
// on one Redis Cluster slot.
func ClientTag(ip netip.Addr) string { return "{" + ClientID(ip) + "}" }

// BanKey names a client's ban.
func BanKey(prefix string, ip netip.Addr) string { return prefix + ClientTag(ip) + ":ban" }

// RateLimitKey names a client's sliding window in one scope ("ip" for the
// per-client limit, "route:<path>" for a route's, "key" for a
// principal's); the rate limiter adds its own prefix.
func RateLimitKey(scope string, ip netip.Addr) string { return scope + ":" + ClientTag(ip) }

// KeyFailuresKey names a client's recent invalid API keys and failed logins.
func KeyFailuresKey(prefix string, ip netip.Addr) string {
	return prefix + "apikey:fail:" + ClientTag(ip)
}

// BanChannel names the pub/sub channel that announces bans and deny-list
// additions (BanNotice, as JSON). Whoever sets a BanKey, or adds a network
// to the deny list, publishes there in the same round trip.
func BanChannel(prefix string) string { return prefix + "bans:announced" }

// BanNotice is one message on BanChannel: either a client banned (Ban,
// its id as BanKey spells it: an IPv4 address, an IPv6 /64's first
// address, or a principal's identity) or a network added to the deny list
// (Deny, a CIDR).
type BanNotice struct {
	Ban  string `json:"ban,omitempty"`
	Deny string `json:"deny,omitempty"`
}

// BanIndexKey names the index of bans. It is one key, so on Redis Cluster
// it lives on one slot, never the slot of the ban keys: it is written next
// to them (in a pipeline, not a transaction, on a cluster), never atomically
// with them.
func BanIndexKey(prefix string) string { return prefix + "bans" }
