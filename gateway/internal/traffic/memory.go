package traffic

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Memory is the traffic store's stand-in while Redis is unreachable: each
// gateway keeps its clients' states in process, as the same records
// (wire.ClientState) updated by a Go port of the Redis scripts
// (observeState, answerState, recordState, refusalState), so the scorer
// sees the same features for the same requests (TestMemoryMatchesRedis
// holds the two together).
//
// It keeps two sets of bans. Held bans are the ones this gateway made while
// Redis could not take them: enforced at once, until Replay writes them
// back. Known bans are the ones Redis holds that this gateway has seen (on
// a refusal, or written back itself): enforced only while Redis cannot be
// read, so that a client banned before an outage stays banned during it,
// and forgotten as soon as Redis answers that the client is not banned
// (lifted by an operator, say).
//
// It is bounded: at most max client states, in two generations. New and
// returning clients go to the current one; when it holds max/2 the older
// one is dropped and the current becomes the older, so a client not seen
// during the last max/2 distinct clients is forgotten (an approximate
// least-recently-used order at no cost per entry). Bans are bounded by max
// too; when full, the ban that ends first gives way.
//
// Memory is safe for concurrent use.
type Memory struct {
	half int

	mu        sync.Mutex
	cur, prev map[netip.Addr]memState

	bmu   sync.Mutex
	bans  map[netip.Addr]localBan
	nbans atomic.Int64

	known  sync.Map // netip.Addr → time.Time: when the ban ends
	nknown atomic.Int64
}

// memState is a client's state and when it expires (Unix ms), as the key's
// TTL would in Redis.
type memState struct {
	st      wire.ClientState
	expires int64
}

type localBan struct {
	until  time.Time
	reason string
}

// NewMemory returns a Memory for at most maxClients clients.
func NewMemory(maxClients int) (*Memory, error) {
	if maxClients < 2 {
		return nil, errors.New("traffic: memory needs room for at least 2 clients")
	}
	half := maxClients / 2
	return &Memory{half: half, cur: make(map[netip.Addr]memState), prev: map[netip.Addr]memState{},
		bans: map[netip.Addr]localBan{}}, nil
}

// get returns ip's live state (a fresh one when it has none or it expired)
// and whether it was fresh. Called with mu held.
func (m *Memory) get(ip netip.Addr, nowMs int64) (memState, bool) {
	s, ok := m.cur[ip]
	if !ok {
		if s, ok = m.prev[ip]; ok {
			delete(m.prev, ip)
		}
	}
	if !ok || nowMs >= s.expires {
		return memState{}, true
	}
	return s, false
}

// put stores ip's state in the current generation. Called with mu held.
func (m *Memory) put(ip netip.Addr, s memState) {
	if _, ok := m.cur[ip]; !ok && len(m.cur) >= m.half {
		m.prev, m.cur = m.cur, make(map[netip.Addr]memState, m.half)
	}
	m.cur[ip] = s
}

// Observe counts one request from ip at now and returns its features, as
// Store.Observe does (bans aside: see Banned; impossible travel aside: the
// principals' last addresses live in Redis only).
func (m *Memory) Observe(ip netip.Addr, now time.Time, req Request) Observation {
	return m.count(ip, now, req, false, false)
}

// Reclassify counts again, as an ordinary request, a page asset whose
// answer was none (and a page, with page), as Store.Reclassify does (bans
// aside: see Banned).
func (m *Memory) Reclassify(ip netip.Addr, now time.Time, req Request, page bool) Observation {
	req.Asset = false
	return m.count(ip, now, req, true, page)
}

// RecordPage counts a document fetched by the request counted at at, as
// Store.RecordPage does.
func (m *Memory) RecordPage(ip netip.Addr, at time.Time) { m.answer(ip, at, false) }

// CountAsAsset counts as a page asset a request counted as ordinary at at,
// as Store.CountAsAsset does.
func (m *Memory) CountAsAsset(ip netip.Addr, at time.Time) { m.answer(ip, at, true) }

// answer runs answerState on ip's state, if it has one.
func (m *Memory) answer(ip netip.Addr, at time.Time, asset bool) {
	atMs := at.UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, fresh := m.get(ip, atMs)
	if fresh {
		return // no state: the request is not in it (the script writes none either)
	}
	answerState(&s.st, atMs, asset)
	m.put(ip, s)
}

// count runs observeState for req (served: as Reclassify) on ip's state.
func (m *Memory) count(ip netip.Addr, now time.Time, req Request, served, page bool) Observation {
	nowMs := now.UnixMilli()
	m.mu.Lock()
	s, _ := m.get(ip, nowMs)
	ttl := observeState(&s.st, nowMs, req, req.visitWindow().Milliseconds(), served, page)
	s.expires = nowMs + ttl
	m.put(ip, s)
	st := s.st
	m.mu.Unlock()
	o := features(&st)
	o.Sensitive, o.Asset, o.Probe = req.Sensitive, req.Asset, req.Probe
	return o
}

// RecordResponse counts the answer to ip as Store.RecordResponse does.
func (m *Memory) RecordResponse(ip netip.Addr, now time.Time, status int) {
	if status < 400 || status > 499 {
		return
	}
	nowMs := now.UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, fresh := m.get(ip, nowMs)
	recordState(&s.st, nowMs, status == 401 || status == 403)
	if fresh {
		s.expires = nowMs + stateTTLMs
	}
	m.put(ip, s)
}

// RecordRefusal counts a request the gateway refused at now, as
// Store.RecordRefusal does: nothing when ip has no state.
func (m *Memory) RecordRefusal(ip netip.Addr, now time.Time) {
	nowMs := now.UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, fresh := m.get(ip, nowMs)
	if fresh {
		return // no state: the request is not in it (the script writes none either)
	}
	refusalState(&s.st, nowMs)
	m.put(ip, s)
}

// Len is the number of client states held (expired ones included until
// they are dropped).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cur) + len(m.prev)
}

// Forget drops every client state (not the bans): once Redis is back they
// are stale.
func (m *Memory) Forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur, m.prev = make(map[netip.Addr]memState), map[netip.Addr]memState{}
}

// Ban bans ip for ttl from now in this gateway, until Replay writes the ban
// to Redis. A longer ban already held is kept.
func (m *Memory) Ban(ip netip.Addr, ttl time.Duration, reason string, now time.Time) {
	until := now.Add(ttl)
	m.bmu.Lock()
	defer m.bmu.Unlock()
	if b, ok := m.bans[ip]; ok && !b.until.Before(until) {
		return
	}
	if _, ok := m.bans[ip]; !ok && len(m.bans) >= 2*m.half {
		m.evictBan(now)
	}
	m.bans[ip] = localBan{until: until, reason: reason}
	m.nbans.Store(int64(len(m.bans)))
}

// evictBan drops the expired bans, or else the one that ends first. Called
// with bmu held, only when the set is full.
func (m *Memory) evictBan(now time.Time) {
	var first netip.Addr
	var end time.Time
	for ip, b := range m.bans {
		if !b.until.After(now) {
			delete(m.bans, ip)
			continue
		}
		if end.IsZero() || b.until.Before(end) {
			first, end = ip, b.until
		}
	}
	if len(m.bans) >= 2*m.half {
		delete(m.bans, first)
	}
}

// Banned reports whether this gateway holds a ban on ip that Redis does
// not have yet, and its time left. It costs one atomic load while there is
// none.
func (m *Memory) Banned(ip netip.Addr, now time.Time) (time.Duration, bool) {
	if m.nbans.Load() == 0 {
		return 0, false
	}
	m.bmu.Lock()
	defer m.bmu.Unlock()
	b, ok := m.bans[ip]
	if !ok {
		return 0, false
	}
	if left := b.until.Sub(now); left > 0 {
		return left, true
	}
	delete(m.bans, ip)
	m.nbans.Store(int64(len(m.bans)))
	return 0, false
}

// Bans is the number of bans held.
func (m *Memory) Bans() int { return int(m.nbans.Load()) }

// knownForever is how long a ban without expiry is remembered after it was
// last seen.
const knownForever = time.Hour

// Seen records that Redis holds a ban on ip for ttl more (0: without
// expiry). It costs a lock-free map read when ip is known already.
func (m *Memory) Seen(ip netip.Addr, ttl time.Duration, now time.Time) {
	if ttl <= 0 {
		ttl = knownForever
	}
	until := now.Add(ttl)
	if old, ok := m.known.Load(ip); ok {
		if d := until.Sub(old.(time.Time)); d < time.Second && d > -time.Second {
			return
		}
		m.known.Store(ip, until)
		return
	}
	if m.nknown.Load() >= int64(2*m.half) {
		m.sweepKnown(now)
		if m.nknown.Load() >= int64(2*m.half) {
			return // full of live bans: this one is enforced by Redis only
		}
	}
	if _, loaded := m.known.LoadOrStore(ip, until); !loaded {
		m.nknown.Add(1)
	}
}

// sweepKnown drops the known bans that have ended.
func (m *Memory) sweepKnown(now time.Time) {
	m.known.Range(func(k, v any) bool {
		if !v.(time.Time).After(now) {
			m.forgetKnown(k.(netip.Addr))
		}
		return true
	})
}

func (m *Memory) forgetKnown(ip netip.Addr) {
	if _, ok := m.known.LoadAndDelete(ip); ok {
		m.nknown.Add(-1)
	}
}

// Lifted records that Redis holds no ban on ip. It costs one atomic load
// while no ban is known, a lock-free map read otherwise.
func (m *Memory) Lifted(ip netip.Addr) {
	if m.nknown.Load() == 0 {
		return
	}
	if _, ok := m.known.Load(ip); ok {
		m.forgetKnown(ip)
	}
}

// BannedInRedis reports whether ip has a ban that Redis held when this
// gateway last saw it, and its time left: what to enforce while Redis
// cannot be read.
func (m *Memory) BannedInRedis(ip netip.Addr, now time.Time) (time.Duration, bool) {
	if m.nknown.Load() == 0 {
		return 0, false
	}
	v, ok := m.known.Load(ip)
	if !ok {
		return 0, false
	}
	if left := v.(time.Time).Sub(now); left > 0 {
		return left, true
	}
	m.forgetKnown(ip)
	return 0, false
}

// BanWriter writes a ban where every gateway sees it (bans.Store.Ban).
type BanWriter func(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string, now time.Time) error

// Replay writes the bans held to Redis with their time left, and drops
// each one written (unless a longer ban replaced it meanwhile; it is known
// from then on, see Seen) and each one expired. It stops at the first error; the rest stay held (and
// enforced) for the next Replay. Writing a ban twice is harmless: Redis
// keeps the longer one.
func (m *Memory) Replay(ctx context.Context, write BanWriter, now time.Time) (int, error) {
	m.bmu.Lock()
	held := make(map[netip.Addr]localBan, len(m.bans))
	for ip, b := range m.bans {
		held[ip] = b
	}
	m.bmu.Unlock()
	n := 0
	for ip, b := range held {
		left := b.until.Sub(now).Truncate(time.Millisecond)
		if left >= time.Millisecond {
			if err := write(ctx, ip, left, b.reason, now); err != nil {
				return n, err
			}
			m.Seen(ip, left, now)
			n++
		}
		m.bmu.Lock()
		if cur, ok := m.bans[ip]; ok && cur == b {
			delete(m.bans, ip)
		}
		m.nbans.Store(int64(len(m.bans)))
		m.bmu.Unlock()
	}
	return n, nil
}

// stateTTLMs is how long a state lives after its last update at least
// (the scripts' 62 s: the 60 s windows and a little).
const stateTTLMs = 62000

// The scripts' rings in Go: advance zeroes the buckets of ring (width w)
// that lie after time a up to time b; add counts one at t, saturating at
// 255. Times are never negative, so / is the scripts' floor.
func advance(ring []uint8, w, a, b int64) {
	n := int64(len(ring))
	ka, kb := a/w, b/w
	if kb-ka >= n {
		clear(ring)
		return
	}
	for k := ka + 1; k <= kb; k++ {
		ring[k%n] = 0
	}
}

func add(ring []uint8, w, t int64) {
	i := (t / w) % int64(len(ring))
	if ring[i] < 255 {
		ring[i]++
	}
}

// slot is the index of the bucket of time a in a ring of n buckets of width
// w moved to time b, or -1 when the ring no longer (or not yet) holds it;
// inc and dec count one more or one less in that bucket of a byte ring, a
// saturated bucket left as it is.
func slot(n, w, a, b int64) int64 {
	k, cur := a/w, b/w
	if k > cur || cur-k >= n {
		return -1
	}
	return k % n
}

func inc(ring []uint8, i int64) {
	if i >= 0 && ring[i] < 255 {
		ring[i]++
	}
}

func dec(ring []uint8, i int64) {
	if i >= 0 && ring[i] > 0 && ring[i] < 255 {
		ring[i]--
	}
}

// nadvance and nadd are advance and add for a ring of n nibbles
// (wire.NibbleRing); a full bucket passes the request to the newest older
// one with room.
func nadvance(ring wire.NibbleRing, n, w, a, b int64) {
	ka, kb := a/w, b/w
	if kb-ka >= n {
		clear(ring)
		return
	}
	for k := ka + 1; k <= kb; k++ {
		ring.Set(k%n, 0)
	}
}

func nadd(ring wire.NibbleRing, n, w, t int64) {
	k := t / w
	for d := range n {
		i := (k - d) % n
		if v := ring.At(i); v < wire.NibbleMax {
			ring.Set(i, v+1)
			return
		}
	}
}

// nsub takes one out of the bucket of time a of a nibble ring moved to b,
// or out of the newest older one that is not empty (where nadd passed it).
func nsub(ring wire.NibbleRing, n, w, a, b int64) {
	k, cur := a/w, b/w
	for j := k; j > cur-n && j <= cur; j-- {
		if v := ring.At(j % n); v > 0 {
			ring.Set(j%n, v-1)
			return
		}
	}
}

// aux moves the 20 s rings to second sec, as stateLua's aux does.
func aux(st *wire.ClientState, sec int64) int64 {
	a := int64(st.AuxSecond)
	if a > sec+2 {
		a = 0
	}
	t := max(sec, a)
	advance(st.Sensitive[:], wire.AuxWidthSeconds, a, t)
	advance(st.Errors4xx[:], wire.AuxWidthSeconds, a, t)
	advance(st.AuthFailures[:], wire.AuxWidthSeconds, a, t)
	advance(st.Probes[:], wire.AuxWidthSeconds, a, t)
	advance(st.Refused[:], wire.AuxWidthSeconds, a, t)
	st.AuxSecond = uint32(t)
	return t
}

// observeState is the observe script (observeSrc) after its ban check,
// line for line: it counts req at now (Unix ms) in a visit window of
// windowMs, and returns the state's TTL in ms. served is the script's kind
// 2 (Reclassify): req counted again as ordinary, but not as a visit, and
// out of the asset rings; page (served only) counts its answer as a page.
func observeState(st *wire.ClientState, now int64, req Request, windowMs int64, served, page bool) int64 {
	last := st.LastMs()
	if last > now+2000 {
		// written by a clock more than 2 s ahead: start the windows from now
		last, st.Gaps = 0, 0
	}
	t := max(now, last)
	had := last > 0
	other := int64(-1) // the last request other than an asset (-1: none)
	if had && st.OtherAgeMs != wire.NoOtherRequest {
		other = last - int64(st.OtherAgeMs)
	}
	nadvance(st.R1s[:], wire.Ring1sBuckets, wire.Ring1sWidthMs, last, t)
	nadvance(st.R10s[:], wire.Ring10sBuckets, wire.Ring10sWidthMs, last, t)
	advance(st.R60s[:], wire.Ring60sWidthMs, last, t)
	advance(st.Assets[:], wire.AssetWidthMs, last, t)
	advance(st.Pages60s[:], wire.Ring60sWidthMs, last, t)
	advance(st.Assets60s[:], wire.Ring60sWidthMs, last, t)
	sec := aux(st, t/1000)
	if req.Asset {
		add(st.Assets[:], wire.AssetWidthMs, t)
		add(st.Assets60s[:], wire.Ring60sWidthMs, t)
	} else {
		nadd(st.R1s[:], wire.Ring1sBuckets, wire.Ring1sWidthMs, t)
		nadd(st.R10s[:], wire.Ring10sBuckets, wire.Ring10sWidthMs, t)
		add(st.R60s[:], wire.Ring60sWidthMs, t)
		if req.Sensitive {
			add(st.Sensitive[:], wire.AuxWidthSeconds, sec)
		}
		if req.Probe {
			add(st.Probes[:], wire.AuxWidthSeconds, sec)
		}
	}
	if served {
		dec(st.Assets[:], slot(wire.AssetBuckets, wire.AssetWidthMs, now, t))
		dec(st.Assets60s[:], slot(wire.Ring60sBuckets, wire.Ring60sWidthMs, now, t))
		if page {
			inc(st.Pages60s[:], slot(wire.Ring60sBuckets, wire.Ring60sWidthMs, now, t))
		}
	}

	if other >= 0 && !req.Asset {
		copy(st.GapCodes[1:], st.GapCodes[:wire.MaxGaps-1])
		st.GapCodes[0] = uint8(min(math.Floor(16*math.Log(float64(1+t-other))/math.Log(2)+0.5), 255))
		st.Gaps = min(st.Gaps+1, wire.MaxGaps)
	}
	switch {
	case !req.Asset:
		st.OtherAgeMs = 0
	case other < 0:
		st.OtherAgeMs = wire.NoOtherRequest
	default:
		st.OtherAgeMs = uint16(min(t-other, wire.NoOtherRequest-1))
	}

	if e0, e1 := last/wire.PathEpochMs, t/wire.PathEpochMs; e1 != e0 {
		st.PathsPrevious = 0
		if e1 == e0+1 {
			st.PathsPrevious = uint8(min(math.Floor(linearCount(int(st.PathsOnes))+0.5), 255))
		}
		st.Paths, st.PathsOnes = [wire.PathBits / 32]int32{}, 0
	}
	if !req.Asset {
		bit := pathBit(req.Path)
		w, mask := bit/32, int32(uint32(1)<<(bit%32))
		if st.Paths[w]&mask == 0 {
			st.Paths[w] |= mask
			st.PathsOnes++
		}
	}

	sr, sd := int64(st.SeqRunDir/4), int64(st.SeqRunDir%4)-1
	secnow := t / 1000 % 65536
	if st.SeqPattern != 0 && ((secnow-int64(st.SeqSecond))%65536+65536)%65536 > 60 {
		st.SeqPattern, sr, sd = 0, 0, 0
	}
	if pat := patternHash(req.Pattern); pat != 0 && !req.Asset {
		// The script reads the id as a Lua number (a double) and takes it
		// modulo 2^32 as Lua does: a - floor(a/b)*b.
		a := float64(req.ID)
		idm := int64(a - math.Floor(a/4294967296)*4294967296)
		run, dir := int64(0), int64(0)
		if uint32(st.SeqPattern) == pat && had {
			switch d := idm - int64(st.SeqID); {
			case d == 0:
				run, dir = sr, sd
			case (d == 1 || d == -1) && (sd == 0 || sd == d):
				run, dir = min(sr+1, 63), d
			}
		}
		st.SeqPattern, st.SeqID, st.SeqSecond = uint16(pat), uint32(idm), uint16(secnow)
		sr, sd = run, dir
	}
	st.SeqRunDir = uint8(sr*4 + sd + 1)

	vstart := last - int64(st.VisitAgeMs)
	switch {
	case served:
		if st.Visits == 0 {
			vstart = t
		}
	default:
		if st.Visits == 0 || vstart+windowMs <= t {
			st.Visits, vstart = 0, t
		}
		st.Visits = min(st.Visits+1, 65535)
	}

	st.LastSecond, st.LastMilli, st.VisitAgeMs = uint32(t/1000), uint16(t%1000), uint32(t-vstart)
	return max(stateTTLMs, vstart+windowMs-t)
}

// answerState is the answered script: at at (Unix ms), a document fetched,
// or (asset) an ordinary request that was a page asset, moved from the
// request rings to the asset rings. A state without requests (only
// answers recorded) is left as it is.
func answerState(st *wire.ClientState, at int64, asset bool) {
	last := st.LastMs()
	if last == 0 {
		return
	}
	if asset {
		nsub(st.R1s[:], wire.Ring1sBuckets, wire.Ring1sWidthMs, at, last)
		nsub(st.R10s[:], wire.Ring10sBuckets, wire.Ring10sWidthMs, at, last)
		dec(st.R60s[:], slot(wire.Ring60sBuckets, wire.Ring60sWidthMs, at, last))
		inc(st.Assets[:], slot(wire.AssetBuckets, wire.AssetWidthMs, at, last))
		inc(st.Assets60s[:], slot(wire.Ring60sBuckets, wire.Ring60sWidthMs, at, last))
	} else {
		inc(st.Pages60s[:], slot(wire.Ring60sBuckets, wire.Ring60sWidthMs, at, last))
	}
}

// recordState is the recordResponse script: one upstream answer at now
// (Unix ms), an auth failure or not.
func recordState(st *wire.ClientState, now int64, auth bool) {
	sec := aux(st, now/1000)
	add(st.Errors4xx[:], wire.AuxWidthSeconds, sec)
	if auth {
		add(st.AuthFailures[:], wire.AuxWidthSeconds, sec)
	}
}

// refusalState is the recordRefusal script: one request refused at now
// (Unix ms).
func refusalState(st *wire.ClientState, now int64) {
	add(st.Refused[:], wire.AuxWidthSeconds, aux(st, now/1000))
}
