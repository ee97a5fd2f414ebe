// Package traffic keeps each client's shared state in Redis so that any
// number of gateway replicas see one truth: sliding-window request counts,
// the behavioural features the scorer needs (sensitive-path hits, upstream
// error and auth-failure answers, distinct paths, runs of sequential ids,
// recent inter-arrival times, a fixed-window visit counter) and bans.
// Observe costs one round trip (a Lua script on one 137-byte string per
// client) per request, sent in a pipeline with the other requests waiting
// at the same moment; RecordResponse one more, only for 4xx answers,
// RecordPage or CountAsAsset one more, only for HTML answers and for
// assets without an extension, and RecordRefusal one more, only for the
// requests the gateway refused. Keys are hash-tagged by IP so each script
// stays on one Redis Cluster slot.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Observation is what Observe learned about a client. Page assets are
// counted in Assets10s and Assets60s only: every other count and feature
// is about the client's other requests (an asset request reads them as
// they were).
type Observation struct {
	// Requests other than page assets in sliding windows ending now, this
	// request included.
	Count1s, Count10s, Count60s int64
	// Asset repeats Request.Asset; Assets10s and Assets60s count page-asset
	// requests in 10 s and in 60 s (windowed as Count60s), this one
	// included: the requests counted as assets by their path, and those
	// counted as ordinary whose answer showed they were assets
	// (CountAsAsset), less those whose answer showed they were none
	// (Reclassify).
	Asset                bool
	Assets10s, Assets60s int64
	// Pages60s counts the documents (2xx HTML answers to GETs, RecordPage)
	// the client fetched in 60 s, windowed as Count60s. It is recorded
	// once answered: this request is not in it.
	Pages60s int64
	// Probe repeats Request.Probe; Probes counts requests to probe paths
	// in 60 s, this one included.
	Probe  bool
	Probes int64
	// Visits in the current fixed visit window, this request included.
	Visits int64
	// Sensitive repeats Request.Sensitive; SensitiveHits counts requests
	// to sensitive paths in 60 s, this one included.
	Sensitive     bool
	SensitiveHits int64
	// Upstream answers in 60 s (RecordResponse): every 4xx, and 401/403.
	Errors4xx, AuthFailures int64
	// Refused60s counts the requests the gateway itself refused (429/403,
	// RecordRefusal) in 60 s, windowed as Errors4xx. They are in Count60s
	// (counted before they were refused) and never in Errors4xx: the error
	// ratio's denominator is Count60s less these, so that a client refused
	// for its errors neither raises nor dilutes its ratio by coming back.
	// It is recorded once refused: this request is not in it.
	Refused60s int64
	// DistinctPaths in about the last minute: a linear-counting estimate
	// (see the state's layout), at most 621.
	DistinctPaths int64
	// SequentialIDs is the length of the client's current run of
	// neighbouring ids on one path pattern: steps of +1 (or of -1), always
	// the same way.
	SequentialIDs int64
	// Intervals gaps between the client's last requests (at most
	// wire.MaxGaps) and their coefficient of variation.
	Intervals  int
	IntervalCV float64
	// PrevIP is the other address the request's principal was last seen
	// from, PrevAge how long ago; PrevIP is invalid when there is none.
	PrevIP  netip.Addr
	PrevAge time.Duration
	// Banned is true when an active ban stopped the request before counting;
	// BanTTL is then the ban's remaining time.
	Banned bool
	BanTTL time.Duration
}

// Store reads and writes client state in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	batch  *batcher
}

// New returns a Store whose keys all start with prefix. It starts the
// batcher's workers, which live as long as the process (one Store per
// gateway).
func New(rdb redis.UniversalClient, prefix string) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("traffic: nil redis client")
	}
	if prefix == "" {
		return nil, errors.New("traffic: empty key prefix")
	}
	return &Store{rdb: rdb, prefix: prefix, batch: newBatcher(rdb)}, nil
}

func (s *Store) stateKey(ip netip.Addr) string { return wire.ClientKey(s.prefix, ip) }

// The client's whole traffic state is one Redis string (wire.ClientState,
// 137 bytes) read and written by one script per request: a ring of 25 ms
// buckets for the 1 s window, 500 ms buckets for the 10 s window (both
// nibbles: a burst of N over any second reads N ± 1) and 10 s buckets for
// the 60 s window (each window the sum of its newest buckets plus the
// oldest one weighted by the part still inside it), 20 s rings for
// sensitive hits, 4xx and 401/403 answers, probes and the gateway's
// refusals, 2 s buckets of page assets, 10 s buckets of documents fetched
// and of page assets (their 60 s windows), the last 11 inter-arrival gaps
// (on a log scale, 4.4% steps), a 128-bit linear-counting bitmap of the
// minute's paths, the current run of sequential ids, and seed 002's
// fixed-window visit counter. One GET and
// one SET per request, whatever the client does: no per-second hashes
// walked, no per-feature keys. Byte buckets saturate at 255 (25/s in the
// 60 s window, 127/s of assets): a client past that is far past every rate
// ramp already. Nibbles hold 15 (600/s in the 1 s window, 30/s in the 10 s
// one): a request whose bucket is full goes to the newest older one with
// room, so a burst of 60 in 10 ms reads 60 (and leaves the window 75 ms
// early); a window reads at most 15 per bucket.
//
// A page asset (Request.Asset) goes only into the asset rings and the
// visit counter: a browser loading a page of 150 images is not a burst,
// and its gaps, paths and ids are those of its other requests. Every
// request moves every ring to its time (time passes whatever the request);
// answers and refusals (answered, recordResponse, recordRefusal) never
// move the request rings.
//
// stateLua is shared by observe, answered, recordResponse and
// recordRefusal: it unpacks
// the state into f (or starts an empty one: also a state of another
// version or length, an older gateway's) and defines the ring helpers.
var stateLua = `
local FMT = '<BI4HI4` + strings.Repeat("B", 21+11+7+4+4+4+4+4+6+7+7+1+11) + `Hi4i4i4i4BBHI4BHHI4'
local R1, R10, R60, RS, RE, RA, RP, RR, RAS, PG, A60 = 5, 26, 37, 44, 48, 52, 56, 60, 64, 70, 77
local NG, GAP, NA, BM, ONES, PREV, SP, SI, SRD, SS, VC, VO = 84, 85, 96, 97, 101, 102, 103, 104, 105, 106, 107, 108
local NF = 108
local floor = math.floor
local raw = redis.call('GET', KEYS[1])
local f
if raw and #raw == ` + fmt.Sprint(wire.ClientStateSize) + ` and string.byte(raw, 1) == ` + fmt.Sprint(wire.ClientStateVersion) + ` then
  f = {struct.unpack(FMT, raw)}
else
  f = {` + fmt.Sprint(wire.ClientStateVersion) + `}
  for i = 2, NF do f[i] = 0 end
end
-- the last request, in ms (0: none yet)
local last = f[2] * 1000 + f[3]
-- advance zeroes the buckets of a ring (offset o, n buckets of width w)
-- that lie after time a up to time b.
local function advance(o, n, w, a, b)
  local ka, kb = floor(a / w), floor(b / w)
  if kb - ka >= n then
    for j = 0, n - 1 do f[o + j] = 0 end
  else
    for k = ka + 1, kb do f[o + k % n] = 0 end
  end
end
local function add(o, n, w, t)
  local i = o + floor(t / w) % n
  if f[i] < 255 then f[i] = f[i] + 1 end
end
-- The same for rings of nibbles (wire.NibbleRing): bucket j in byte j/2,
-- the low nibble for even j; n buckets take (n+1)/2 bytes.
local function nset(o, j, v)
  local i = o + floor(j / 2)
  if j % 2 == 0 then f[i] = f[i] - f[i] % 16 + v else f[i] = f[i] % 16 + v * 16 end
end
local function nadvance(o, n, w, a, b)
  local ka, kb = floor(a / w), floor(b / w)
  if kb - ka >= n then
    for j = 0, floor((n - 1) / 2) do f[o + j] = 0 end
  else
    for k = ka + 1, kb do nset(o, k % n, 0) end
  end
end
-- nadd counts one at t; a full bucket (15) passes it to the newest older
-- one with room, so a burst faster than 15 a bucket still reads whole
-- (it leaves the window a few buckets early).
local function nadd(o, n, w, t)
  local k = floor(t / w)
  for d = 0, n - 1 do
    local j = (k - d) % n
    local b = f[o + floor(j / 2)]
    local v = b % 16
    if j % 2 == 1 then v = floor(b / 16) end
    if v < 15 then
      nset(o, j, v + 1)
      return
    end
  end
end
-- slot is the index of the bucket of time a in a ring (offset o, n buckets
-- of width w) moved to time b, or nil when the ring no longer (or not yet)
-- holds it.
local function slot(o, n, w, a, b)
  local k, cur = floor(a / w), floor(b / w)
  if k > cur or cur - k >= n then return nil end
  return o + k % n
end
-- inc and dec count one more or one less in bucket i (a slot) of a byte
-- ring; a saturated bucket (255: at least that many) stays as it is.
local function inc(i)
  if i and f[i] < 255 then f[i] = f[i] + 1 end
end
local function dec(i)
  if i and f[i] > 0 and f[i] < 255 then f[i] = f[i] - 1 end
end
-- nsub takes one out of the bucket of time a of a nibble ring moved to b:
-- out of the newest bucket from a's back that is not empty, where nadd
-- passed it when a's was full; nothing once a's bucket has left the ring.
local function nsub(o, n, w, a, b)
  local k, cur = floor(a / w), floor(b / w)
  if k > cur then return end
  for j = k, cur - n + 1, -1 do
    local i = j % n
    local x = f[o + floor(i / 2)]
    local v = x % 16
    if i % 2 == 1 then v = floor(x / 16) end
    if v > 0 then
      nset(o, i, v - 1)
      return
    end
  end
end
-- The aux rings (sensitive, 4xx, auth, probes, refused) move on whole seconds. A
-- state more than 2 s ahead was written by a gateway whose clock is ahead
-- (or is corrupt): its rings start again from now rather than piling every
-- request into the bucket of that future time.
local function aux(sec)
  if f[4] > sec + 2 then f[4] = 0 end
  local t = math.max(sec, f[4])
  advance(RS, 4, 20, f[4], t)
  advance(RE, 4, 20, f[4], t)
  advance(RA, 4, 20, f[4], t)
  advance(RP, 4, 20, f[4], t)
  advance(RR, 4, 20, f[4], t)
  f[4] = t
  return t
end
`

// observe counts one request and returns the client's features, or the
// ban's PTTL when an active ban stops it before anything is counted.
//
// With kind 2 it counts a request again as the ordinary one its answer
// showed it was (Reclassify): everything an ordinary request is counted in
// but the visit counter, which counted it already as an asset, and it takes
// it out of both asset rings again (the buckets of now_ms, while they are
// still in the ring); with page 1 its answer was a document, counted as a
// page at now_ms (as answered does).
//
// KEYS: state, ban
// ARGV: now_ms, path bit (0..127), sensitive (0/1), pattern hash (0: none),
// id, visit_window_ms, kind (0: ordinary, 1: asset, 2: reclassified),
// probe (0/1), page (0/1; kind 2 only)
var observe = redis.NewScript(observeSrc)

var observeSrc = `
local ban = redis.call('PTTL', KEYS[2])
if ban > 0 or ban == -1 then
  return {-1, ban}
end
` + stateLua + `
local now = tonumber(ARGV[1])
local asset = ARGV[7] == '1'
local served = ARGV[7] == '2'
if last > now + 2000 then
  -- written by a clock more than 2 s ahead: start the windows from now
  last, f[NG] = 0, 0
end
local t = math.max(now, last)
local had = last > 0
-- the last request other than an asset, in ms (-1: none)
local other = -1
if had and f[NA] ~= ` + fmt.Sprint(wire.NoOtherRequest) + ` then other = last - f[NA] end
nadvance(R1, 41, 25, last, t)
nadvance(R10, 21, 500, last, t)
advance(R60, 7, 10000, last, t)
advance(RAS, 6, 2000, last, t)
advance(PG, 7, 10000, last, t)
advance(A60, 7, 10000, last, t)
local sec = aux(floor(t / 1000))
if asset then
  add(RAS, 6, 2000, t)
  add(A60, 7, 10000, t)
else
  nadd(R1, 41, 25, t)
  nadd(R10, 21, 500, t)
  add(R60, 7, 10000, t)
  if ARGV[3] == '1' then add(RS, 4, 20, sec) end
  if ARGV[8] == '1' then add(RP, 4, 20, sec) end
end
if served then
  dec(slot(RAS, 6, 2000, now, t))
  dec(slot(A60, 7, 10000, now, t))
  if ARGV[9] == '1' then inc(slot(PG, 7, 10000, now, t)) end
end

-- Gaps on a log scale: code = round(16 * log2(1 + ms)), at most 255.
if other >= 0 and not asset then
  for j = 10, 1, -1 do f[GAP + j] = f[GAP + j - 1] end
  f[GAP] = math.min(floor(16 * math.log(1 + t - other) / math.log(2) + 0.5), 255)
  f[NG] = math.min(f[NG] + 1, 11)
end
if asset then
  if other < 0 then f[NA] = ` + fmt.Sprint(wire.NoOtherRequest) + ` else f[NA] = math.min(t - other, ` + fmt.Sprint(wire.NoOtherRequest-1) + `) end
else
  f[NA] = 0
end

-- Distinct paths: linear counting over this minute's bitmap (ONES bits
-- set); the last minute's estimate fades out as this one fills.
local function est(ones)
  if ones >= 128 then return 621 end
  return -128 * math.log(1 - ones / 128)
end
local e0, e1 = floor(last / 60000), floor(t / 60000)
if e1 ~= e0 then
  if e1 == e0 + 1 then f[PREV] = math.min(floor(est(f[ONES]) + 0.5), 255) else f[PREV] = 0 end
  f[BM], f[BM + 1], f[BM + 2], f[BM + 3], f[ONES] = 0, 0, 0, 0, 0
end
if not asset then
  local b = tonumber(ARGV[2])
  local w, m = BM + floor(b / 32), bit.lshift(1, b % 32)
  if bit.band(f[w], m) == 0 then
    f[w], f[ONES] = bit.bor(f[w], m), f[ONES] + 1
  end
end

-- Sequential ids: the pattern as a 16-bit hash, the id modulo 2^32, the
-- run (at most 63) and its direction in one byte, and the second (mod
-- 2^16) of the last request on the pattern: a run not extended for 60 s
-- is over. An asset's pattern is 0.
local sr, sd = floor(f[SRD] / 4), f[SRD] % 4 - 1
local secnow = floor(t / 1000) % 65536
if f[SP] ~= 0 and (secnow - f[SS]) % 65536 > 60 then
  f[SP], sr, sd = 0, 0, 0
end
local pat = tonumber(ARGV[4])
if pat ~= 0 then
  local id = tonumber(ARGV[5]) % 4294967296
  local run, dir = 0, 0
  if f[SP] == pat and had then
    local d = id - f[SI]
    if d == 0 then
      run, dir = sr, sd
    elseif (d == 1 or d == -1) and (sd == 0 or sd == d) then
      run, dir = math.min(sr + 1, 63), d
    end
  end
  f[SP], f[SI], f[SS], sr, sd = pat, id, secnow, run, dir
end
f[SRD] = sr * 4 + sd + 1

-- The visit window starts at a client's first visit; VO is how long
-- before the last request it started.
local window = tonumber(ARGV[6])
local vstart = last - f[VO]
if served then
  if f[VC] == 0 then vstart = t end
else
  if f[VC] == 0 or vstart + window <= t then
    f[VC], vstart = 0, t
  end
  f[VC] = math.min(f[VC] + 1, 65535)
end

f[2], f[3], f[VO] = floor(t / 1000), t % 1000, t - vstart
local ttl = math.max(62000, vstart + window - t)
local packed = struct.pack(FMT, unpack(f, 1, NF))
redis.call('SET', KEYS[1], packed, 'PX', math.ceil(ttl))
return packed
`

// features reads a client's counts and features off its state, as of its
// last request (the one just counted): each window is the sum of its ring's
// newest buckets plus the oldest weighted by the part of it still inside.
func features(st *wire.ClientState) Observation {
	t := st.LastMs()
	sec := int64(st.AuxSecond)
	round := func(x float64) int64 { return int64(math.Floor(x + 0.5)) }
	o := Observation{
		Count1s:       round(nibbleWindow(st.R1s[:], wire.Ring1sBuckets, wire.Ring1sWidthMs, t)),
		Count10s:      round(nibbleWindow(st.R10s[:], wire.Ring10sBuckets, wire.Ring10sWidthMs, t)),
		Count60s:      round(window(st.R60s[:], wire.Ring60sWidthMs, t)),
		Assets10s:     round(window(st.Assets[:], wire.AssetWidthMs, t)),
		Assets60s:     round(window(st.Assets60s[:], wire.Ring60sWidthMs, t)),
		Pages60s:      round(window(st.Pages60s[:], wire.Ring60sWidthMs, t)),
		Probes:        round(window(st.Probes[:], wire.AuxWidthSeconds, sec)),
		Visits:        int64(st.Visits),
		SensitiveHits: round(window(st.Sensitive[:], wire.AuxWidthSeconds, sec)),
		Errors4xx:     round(window(st.Errors4xx[:], wire.AuxWidthSeconds, sec)),
		AuthFailures:  round(window(st.AuthFailures[:], wire.AuxWidthSeconds, sec)),
		Refused60s:    round(window(st.Refused[:], wire.AuxWidthSeconds, sec)),
		SequentialIDs: int64(st.SeqRun()),
	}
	fade := float64(st.PathsPrevious) * (1 - float64(t%wire.PathEpochMs)/wire.PathEpochMs)
	o.DistinctPaths = max(round(linearCount(int(st.PathsOnes))), round(fade))
	o.Intervals, o.IntervalCV = regularityOfGaps(st.GapCodes[:min(int(st.Gaps), wire.MaxGaps)])
	return o
}

// window is the sliding window of (len(ring)-1)·width ending at t.
func window(ring []uint8, width, t int64) float64 {
	n := int64(len(ring))
	k := t / width
	var sum float64
	for j := int64(0); j < n-1; j++ {
		sum += float64(ring[(k-j)%n])
	}
	return sum + float64(ring[(k-n+1)%n])*(1-float64(t%width)/float64(width))
}

// nibbleWindow is window for a ring of n nibbles (wire.NibbleRing).
func nibbleWindow(ring wire.NibbleRing, n, width, t int64) float64 {
	k := t / width
	var sum float64
	for j := int64(0); j < n-1; j++ {
		sum += float64(ring.At((k - j) % n))
	}
	return sum + float64(ring.At((k-n+1)%n))*(1-float64(t%width)/float64(width))
}

// linearCount estimates the distinct paths behind a bitmap with ones bits
// set (linear counting).
func linearCount(ones int) float64 {
	if ones >= wire.PathBits {
		return 621 // the estimate's ceiling: 128 ln 128
	}
	return -wire.PathBits * math.Log(1-float64(ones)/wire.PathBits)
}

// travel reads where a principal was last seen (Remember writes it, only
// once the principal is verified): the address and time, when the address
// differs from this one. The key is tagged by the principal, not the IP,
// so on Redis Cluster it may live on another node: it goes in the same
// pipeline as observe, one round trip on a single node. Reading never
// writes: an unverified name in a request body must not move anyone.
//
// KEYS: the principal's key; ARGV: ip
var travel = redis.NewScript(`
local prev = redis.call('HMGET', KEYS[1], 'ip', 't')
if prev[1] and prev[1] ~= ARGV[1] then
  return {prev[1], prev[2]}
end
return {}
`)

// pathBit is the bit of the distinct-paths bitmap a path sets: the path's
// FNV-1a hash modulo the bitmap's size.
func pathBit(path string) uint32 { return fnv32(path) % wire.PathBits }

// patternHash names an enumeration pattern in the state: 16 bits, 0 is
// "none".
func patternHash(pattern string) uint32 {
	if pattern == "" {
		return 0
	}
	h := fnv32(pattern)
	return max((h>>16)^(h&0xffff), 1)
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Remember records that a verified principal (an API key the gateway
// accepted, a login the upstream confirmed) was just used from ip, for
// impossible travel. Names merely sent in a request are never remembered:
// anyone could send them from anywhere.
func (s *Store) Remember(ctx context.Context, principal string, ip netip.Addr, now time.Time) error {
	if principal == "" {
		return nil
	}
	key := s.prefix + "{" + principal + "}:loc"
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "ip", ip.String(), "t", now.UnixMilli())
		p.PExpire(ctx, key, 24*time.Hour)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remember %s: %w", principal, err)
	}
	return nil
}

// Observe records one request from ip at now and returns its counts and
// features, or reports that ip is banned.
func (s *Store) Observe(ctx context.Context, ip netip.Addr, now time.Time, req Request) (Observation, error) {
	return s.ObserveWith(ctx, ip, now, req, nil)
}

// ObserveWith is Observe with more commands in the same pipeline: extra,
// when not nil, queues them (a rate limit's script, say) so the request
// still costs one round trip. Their results are read from their own
// commands after ObserveWith returns.
func (s *Store) ObserveWith(ctx context.Context, ip netip.Addr, now time.Time, req Request, extra func(redis.Pipeliner)) (Observation, error) {
	kind := kindOrdinary
	if req.Asset {
		kind = kindAsset
	}
	keys, args := s.observeArgs(ip, now, req, kind, false)
	reply, prev, err := s.observePipelined(ctx, keys, args, ip, req.Principal, extra)
	if err != nil {
		return Observation{}, fmt.Errorf("observe %s: %w", ip, err)
	}
	o, err := observation(reply, req)
	if err != nil {
		return Observation{}, fmt.Errorf("observe %s: %w", ip, err)
	}
	if o.Banned {
		return o, nil
	}
	if len(prev) == 2 {
		pip, _ := prev[0].(string)
		pt, _ := prev[1].(string)
		ms, perr := strconv.ParseInt(pt, 10, 64)
		if a, aerr := netip.ParseAddr(pip); aerr == nil && perr == nil {
			o.PrevIP, o.PrevAge = a, max(now.Sub(time.UnixMilli(ms)), 0)
		}
	}
	return o, nil
}

// observation reads the observe script's reply for req: the client's new
// state, or {-1, the ban's PTTL} when a ban stopped it.
func observation(reply any, req Request) (Observation, error) {
	switch r := reply.(type) {
	case []any:
		ttl, _ := r[len(r)-1].(int64)
		o := Observation{Banned: true, BanTTL: time.Duration(ttl) * time.Millisecond}
		if ttl < 0 {
			o.BanTTL = 0 // a ban without expiry
		}
		return o, nil
	case string:
		st, err := wire.DecodeClientState([]byte(r))
		if err != nil {
			return Observation{}, err
		}
		o := features(&st)
		o.Sensitive, o.Asset, o.Probe = req.Sensitive, req.Asset, req.Probe
		return o, nil
	default:
		return Observation{}, fmt.Errorf("unexpected reply %T", reply)
	}
}

// The kinds of count the observe script makes (its ARGV[7]).
const (
	kindOrdinary = "0"
	kindAsset    = "1"
	kindServed   = "2" // Reclassify
)

// observeArgs are the observe script's keys and arguments for req at now
// (page: a reclassified request's answer was a document).
func (s *Store) observeArgs(ip netip.Addr, now time.Time, req Request, kind string, page bool) ([]string, []any) {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	pat := patternHash(req.Pattern)
	if kind == kindAsset {
		pat = 0
	}
	keys := []string{wire.ClientKey(s.prefix, ip), wire.BanKey(s.prefix, ip)}
	return keys, []any{now.UnixMilli(), pathBit(req.Path), flag(req.Sensitive), pat, req.ID, req.visitWindow().Milliseconds(), kind, flag(req.Probe), flag(page)}
}

// Reclassify counts again, as an ordinary request, a request from ip at
// now that Observe counted as a page asset and whose answer showed it was
// none (its Content-Type was no asset's: JSON for /api/products/7.png).
// req is the request as served (Request.Served). It goes into everything an
// ordinary request does (the windows, the distinct paths, the run of
// sequential ids, the gaps) but the visit counter, which has it already,
// and leaves the asset windows (unless its bucket is full or gone by).
// page says its answer was a document: it is counted as a page too (as
// RecordPage would, in the same round trip), or a scraper that puts .png
// on the pages it fetches would be counted as neither. It returns the
// client's features with it counted, or Banned when a ban came meanwhile
// (then nothing is counted).
//
// It costs one round trip, batched like Observe; the gateway makes it only
// for such answers, which browsers' assets never give.
func (s *Store) Reclassify(ctx context.Context, ip netip.Addr, now time.Time, req Request, page bool) (Observation, error) {
	keys, args := s.observeArgs(ip, now, req, kindServed, page)
	reply, _, err := s.observePipelined(ctx, keys, args, ip, "", nil)
	if err == nil {
		var o Observation
		if o, err = observation(reply, req); err == nil {
			return o, nil
		}
	}
	return Observation{}, fmt.Errorf("reclassify %s: %w", ip, err)
}

// observePipelined sends observe, the principal's travel lookup (when there
// is a principal) and extra in one round trip, batched with other requests'
// (batcher). A script Redis has not cached yet (NOSCRIPT, after a restart)
// is sent again on its own.
func (s *Store) observePipelined(ctx context.Context, keys []string, args []any, ip netip.Addr, principal string, extra func(redis.Pipeliner)) (any, []any, error) {
	trKeys := []string{s.prefix + "{" + principal + "}:loc"}
	trArgs := []any{ip.String()}
	var obs, tr *redis.Cmd
	err := s.batch.do(ctx, func(pipe redis.Pipeliner) {
		obs = observe.EvalSha(ctx, pipe, keys, args...)
		if principal != "" {
			tr = travel.EvalSha(ctx, pipe, trKeys, trArgs...)
		}
		if extra != nil {
			extra(pipe)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if noScript(obs.Err()) {
		obs = observe.Run(ctx, s.rdb, keys, args...)
	}
	res, err := obs.Result()
	if err != nil {
		return nil, nil, err
	}
	if tr == nil {
		return res, nil, nil
	}
	if noScript(tr.Err()) {
		tr = travel.Run(ctx, s.rdb, trKeys, trArgs...)
	}
	prev, err := tr.Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	return res, prev, nil
}

func noScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }

// regularityOfGaps returns the number of gaps the state keeps and their
// coefficient of variation (population standard deviation / mean), the
// gaps decoded from their log-scale codes (wire.GapMs).
func regularityOfGaps(codes []uint8) (int, float64) {
	gaps := make([]float64, len(codes))
	for i, c := range codes {
		gaps[i] = wire.GapMs(c)
	}
	return len(gaps), cv(gaps)
}

// cv is the coefficient of variation of gaps; 0 when there are none or
// they are all 0.
func cv(gaps []float64) float64 {
	var sum float64
	for _, g := range gaps {
		sum += g
	}
	if sum == 0 {
		return 0
	}
	mean := sum / float64(len(gaps))
	var sq float64
	for _, g := range gaps {
		sq += (g - mean) * (g - mean)
	}
	return math.Sqrt(sq/float64(len(gaps))) / mean
}

// recordResponse counts one upstream answer in the client's state: every
// 4xx, and 401/403 also as an auth failure. A state that has expired is
// started again with only this answer in it.
//
// KEYS: state; ARGV: now_ms, auth (0/1).
var recordResponse = redis.NewScript(stateLua + `
local fresh = last == 0 and f[4] == 0
local sec = aux(math.floor(tonumber(ARGV[1]) / 1000))
add(RE, 4, 20, sec)
if ARGV[2] == '1' then add(RA, 4, 20, sec) end
local packed = struct.pack(FMT, unpack(f, 1, NF))
if fresh then
  redis.call('SET', KEYS[1], packed, 'PX', 62000)
else
  redis.call('SET', KEYS[1], packed, 'KEEPTTL')
end
return 1
`)

// recordRefusal counts one request the gateway refused (429/403) at
// now_ms in the refusals ring, moving the aux rings to now_ms as
// recordResponse does, and nothing else: the request stays in the request
// rings, its refusal out of the 4xx and auth rings. A client without a
// state (expired, never seen, or an older gateway's) is left alone: the
// refused request is not in its Count60s, so there is nothing to discount.
//
// KEYS: state; ARGV: now_ms.
var recordRefusal = redis.NewScript(stateLua + `
if last == 0 and f[4] == 0 then return 0 end
add(RR, 4, 20, aux(floor(tonumber(ARGV[1]) / 1000)))
redis.call('SET', KEYS[1], struct.pack(FMT, unpack(f, 1, NF)), 'KEEPTTL')
return 1
`)

// RecordRefusal counts a request from ip the gateway refused at now (its
// own 429 or 403, after Observe counted it) toward Observation.Refused60s,
// so the error ratio can leave it out of its denominator: a client
// throttled for its errors that keeps coming neither raises its ratio (a
// refusal is never a 4xx) nor dilutes it. A client without a state is left
// alone. It costs one round trip, batched like Observe.
func (s *Store) RecordRefusal(ctx context.Context, ip netip.Addr, now time.Time) error {
	keys := []string{s.stateKey(ip)}
	var cmd *redis.Cmd
	err := s.batch.do(ctx, func(pipe redis.Pipeliner) {
		cmd = recordRefusal.EvalSha(ctx, pipe, keys, now.UnixMilli())
	})
	if err == nil {
		if err = cmd.Err(); noScript(err) {
			err = recordRefusal.Run(ctx, s.rdb, keys, now.UnixMilli()).Err()
		}
	}
	if err != nil {
		return fmt.Errorf("record refusal %s: %w", ip, err)
	}
	return nil
}

// answered counts what an answer showed about a request observe counted at
// at_ms, in the buckets of at_ms, without moving any ring (the request's
// own observe moved them past it): a document fetched (what 'p'), or, for
// a request counted as ordinary, that it was a page asset (what 'a'). The
// latter takes it out of the 1 s, 10 s and 60 s request rings (nsub: where
// nadd put it) and counts it in both asset rings. What else its observe
// did stays: its gap (and OtherAgeMs), its path bit and its step in a run
// of ids are woven into the state with the requests after it and cannot
// be taken back one by one; it was, and stays, a visit. A bucket the ring
// no longer holds is left alone, and so is a state without requests
// (expired since, or only answers recorded): the request is not in it.
//
// KEYS: state; ARGV: at_ms, what ('p' or 'a').
var answered = redis.NewScript(stateLua + `
if last == 0 then return 0 end
local a = tonumber(ARGV[1])
if ARGV[2] == 'a' then
  nsub(R1, 41, 25, a, last)
  nsub(R10, 21, 500, a, last)
  dec(slot(R60, 7, 10000, a, last))
  inc(slot(RAS, 6, 2000, a, last))
  inc(slot(A60, 7, 10000, a, last))
else
  inc(slot(PG, 7, 10000, a, last))
end
redis.call('SET', KEYS[1], struct.pack(FMT, unpack(f, 1, NF)), 'KEEPTTL')
return 1
`)

// What answered records.
const (
	answerPage  = "p"
	answerAsset = "a"
)

// RecordPage counts a document the client at ip fetched with a request
// Observe counted at at (its 2xx answer to a GET was HTML), toward
// Observation.Pages60s: the buckets of at, while the state still holds
// them. It costs one round trip, batched like Observe; the gateway makes it
// only for HTML answers.
func (s *Store) RecordPage(ctx context.Context, ip netip.Addr, at time.Time) error {
	if err := s.answer(ctx, ip, at, answerPage); err != nil {
		return fmt.Errorf("record page %s: %w", ip, err)
	}
	return nil
}

// CountAsAsset counts as a page asset a request from ip that Observe
// counted as ordinary at at and whose answer showed it was one (an image
// for /image/60844/productModel/200x200): it leaves the 1 s, 10 s and
// 60 s request windows and joins the asset windows, so a page's
// thumbnails served without an extension are no burst. Its gap, path and
// step in a run of ids stay (see answered). The caller decides which
// requests qualify (GET or HEAD, no sensitive path, no probe). It costs
// one round trip, batched like Observe.
func (s *Store) CountAsAsset(ctx context.Context, ip netip.Addr, at time.Time) error {
	if err := s.answer(ctx, ip, at, answerAsset); err != nil {
		return fmt.Errorf("count as asset %s: %w", ip, err)
	}
	return nil
}

func (s *Store) answer(ctx context.Context, ip netip.Addr, at time.Time, what string) error {
	keys := []string{s.stateKey(ip)}
	var cmd *redis.Cmd
	err := s.batch.do(ctx, func(pipe redis.Pipeliner) {
		cmd = answered.EvalSha(ctx, pipe, keys, at.UnixMilli(), what)
	})
	if err == nil {
		if err = cmd.Err(); noScript(err) {
			err = answered.Run(ctx, s.rdb, keys, at.UnixMilli(), what).Err()
		}
	}
	return err
}

// RecordResponse counts the upstream's answer to ip: a 4xx toward the
// error ratio, a 401 or 403 also toward auth failures. Other statuses are
// not recorded and cost nothing.
func (s *Store) RecordResponse(ctx context.Context, ip netip.Addr, now time.Time, status int) error {
	if status < 400 || status > 499 {
		return nil
	}
	auth := "0"
	if status == 401 || status == 403 {
		auth = "1"
	}
	keys := []string{s.stateKey(ip)}
	var cmd *redis.Cmd
	err := s.batch.do(ctx, func(pipe redis.Pipeliner) {
		cmd = recordResponse.EvalSha(ctx, pipe, keys, now.UnixMilli(), auth)
	})
	if err == nil {
		if err = cmd.Err(); noScript(err) {
			err = recordResponse.Run(ctx, s.rdb, keys, now.UnixMilli(), auth).Err()
		}
	}
	if err != nil {
		return fmt.Errorf("record response %s: %w", ip, err)
	}
	return nil
}
