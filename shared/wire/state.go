package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
)

// ClientKey names a client's traffic state: one Redis string per client
// (see ClientState), hash-tagged like BanKey so a client's keys share a
// Redis Cluster slot.
func ClientKey(prefix string, ip netip.Addr) string { return prefix + ClientTag(ip) }

// ClientStateVersion is the first byte of every state the gateways write.
// A state of another version (or length) is read as no state at all: the
// gateways start it again, the dashboard shows no requests.
const ClientStateVersion = 6

// ClientStateSize is the length of a version-6 state in bytes. Version 4
// was 119 bytes, under 125, so that Redis kept it in a 128-byte
// allocation; version 5's 60 s page and asset rings (14 bytes) took it to
// 133, in Redis's next size class, 160 bytes, which has room up to 156;
// the 20 s ring of refused requests (4 bytes) takes it to 137.
const ClientStateSize = 137

// The rings of a client's state: Buckets buckets of Width each. A sliding
// window of (Buckets-1)×Width ending at t is the sum of the Buckets-1 newest
// buckets plus the oldest one weighted by the part of it still inside the
// window. The 1 s and 10 s rings are nibbles (NibbleRing): a burst of N
// evenly spread over any second reads N ± 1 up to N = 40. The 60 s windows
// of pages and of page assets are rings like the 60 s request ring.
const (
	Ring1sBuckets, Ring1sWidthMs   = 41, 25   // 1 s window, 25 ms nibble buckets
	Ring10sBuckets, Ring10sWidthMs = 21, 500  // 10 s window, 500 ms nibble buckets
	Ring60sBuckets, Ring60sWidthMs = 7, 10000 // 60 s window, 10 s buckets
	AssetBuckets, AssetWidthMs     = 6, 2000  // 10 s window of page assets, 2 s buckets
	AuxBuckets, AuxWidthSeconds    = 4, 20    // 60 s windows of sensitive hits, 4xx, auth failures, probes and refusals
	MaxGaps                        = 11       // inter-arrival gaps kept (the last 12 requests)
	PathBits                       = 128      // distinct-paths bitmap (linear counting)
	PathEpochMs                    = 60000    // the bitmap restarts every minute
	NibbleMax                      = 15       // a nibble bucket saturates here
	NoOtherRequest                 = 0xffff   // OtherAgeMs when the client made only asset requests
)

// NibbleRing is a ring of 4-bit buckets packed two to a byte, bucket i in
// byte i/2, the low nibble for even i. A bucket holds at most NibbleMax;
// the gateway counts a request whose bucket is full in the newest older
// bucket with room, so a window reads at most 600/s (1 s) and 30/s (10 s)
// sustained, both past where the burst (15–40/s) and rate (5–15/s) ramps
// top out, and a short burst reads whole.
type NibbleRing []uint8

// At is bucket i.
func (r NibbleRing) At(i int64) uint8 {
	if i%2 == 0 {
		return r[i/2] & 0xf
	}
	return r[i/2] >> 4
}

// Set sets bucket i to v (at most NibbleMax).
func (r NibbleRing) Set(i int64, v uint8) {
	if i%2 == 0 {
		r[i/2] = r[i/2]&0xf0 | v
	} else {
		r[i/2] = r[i/2]&0x0f | v<<4
	}
}

// ClientState is a client's traffic state as the gateways keep it in Redis
// under ClientKey: a fixed little-endian record of 137 bytes, written by the
// gateway's Lua scripts (gateway/internal/traffic) and read by the
// dashboard. Page assets (the Assets and Assets60s rings) are counted
// apart: every other ring, the gaps, the paths and the run are about the
// client's other requests (an ordinary request whose answer showed it was
// an asset moves from the request rings to the asset rings, but its gap,
// path and id stay). Pages60s counts the documents (HTML answers) the
// client fetched. Refused counts the client's requests the gateway itself
// refused (429/403) after counting them: they are in the request rings,
// never in Errors4xx. The layout, field by field:
//
//	B     version (ClientStateVersion)
//	I4 H  last request (of any kind): Unix s, and ms within that second
//	I4    last update of the Aux rings, Unix s
//	21×B  requests, 41 25 ms buckets, nibbles (NibbleRing)
//	11×B  requests, 21 500 ms buckets, nibbles
//	7×B   requests, 10 s buckets
//	4×B   sensitive-path hits, 20 s buckets
//	4×B   upstream 4xx answers, 20 s buckets
//	4×B   upstream 401/403 answers, 20 s buckets
//	4×B   probes, 20 s buckets
//	4×B   requests the gateway refused, 20 s buckets
//	6×B   page assets, 2 s buckets
//	7×B   documents fetched (2xx HTML answers to GETs), 10 s buckets
//	7×B   page assets, 10 s buckets
//	B     gaps kept; 11×B inter-arrival gaps, newest first, as GapCode
//	H     how long before the last request (ms, at most 65534) the last
//	      request other than an asset was; NoOtherRequest: none
//	4×i4  distinct-paths bitmap of this minute; B its bits set; B estimate
//	      of the last minute (at most 255)
//	H     enumeration pattern hash; I4 last id (mod 2^32); B run×4 +
//	      direction+1 (run at most 63); H second (mod 2^16) of the last
//	      request on the pattern (a run not extended for 60 s is over)
//	H     visits in the fixed visit window; I4 how long before the last
//	      request (ms) the window started
//
// Bucket i of a ring holds the requests of every time t with
// floor(t/width) mod buckets == i that is still inside the ring; a byte
// bucket saturates at 255 (the 2 s asset ring at 127/s, the 10 s rings at
// 25/s), a nibble holds 15 (NibbleRing).
type ClientState struct {
	LastSecond    uint32
	LastMilli     uint16
	AuxSecond     uint32
	R1s           [(Ring1sBuckets + 1) / 2]uint8  // NibbleRing
	R10s          [(Ring10sBuckets + 1) / 2]uint8 // NibbleRing
	R60s          [Ring60sBuckets]uint8
	Sensitive     [AuxBuckets]uint8
	Errors4xx     [AuxBuckets]uint8
	AuthFailures  [AuxBuckets]uint8
	Probes        [AuxBuckets]uint8
	Refused       [AuxBuckets]uint8
	Assets        [AssetBuckets]uint8
	Pages60s      [Ring60sBuckets]uint8
	Assets60s     [Ring60sBuckets]uint8
	Gaps          uint8
	GapCodes      [MaxGaps]uint8
	OtherAgeMs    uint16
	Paths         [PathBits / 32]int32
	PathsOnes     uint8
	PathsPrevious uint8
	SeqPattern    uint16
	SeqID         uint32
	SeqRunDir     uint8
	SeqSecond     uint16
	Visits        uint16
	VisitAgeMs    uint32
}

// SeqRun is the length of the current run of sequential ids.
func (s *ClientState) SeqRun() uint8 { return s.SeqRunDir / 4 }

// LastMs is the last request's time in Unix ms (0: none).
func (s *ClientState) LastMs() int64 { return int64(s.LastSecond)*1000 + int64(s.LastMilli) }

// GapCode is how a gap of ms milliseconds is kept: round(16·log2(1+ms)),
// at most 255 (about 62 s), so every step is 4.4%.
func GapCode(ms float64) uint8 {
	return uint8(min(math.Round(16*math.Log2(1+max(ms, 0))), 255))
}

// GapMs is the gap a code stands for (GapCode's inverse, within 2.2%).
func GapMs(code uint8) float64 { return math.Exp2(float64(code)/16) - 1 }

// DecodeClientState parses a state written under ClientKey.
func DecodeClientState(b []byte) (ClientState, error) {
	var s ClientState
	if len(b) != ClientStateSize || b[0] != ClientStateVersion {
		return s, fmt.Errorf("client state: want version %d, %d bytes; got %d bytes", ClientStateVersion, ClientStateSize, len(b))
	}
	le := binary.LittleEndian
	i := 1
	u8 := func() uint8 { i++; return b[i-1] }
	u16 := func() uint16 { i += 2; return le.Uint16(b[i-2:]) }
	u32 := func() uint32 { i += 4; return le.Uint32(b[i-4:]) }
	bytes := func(dst []uint8) { i += copy(dst, b[i:]) }
	s.LastSecond, s.LastMilli, s.AuxSecond = u32(), u16(), u32()
	bytes(s.R1s[:])
	bytes(s.R10s[:])
	bytes(s.R60s[:])
	bytes(s.Sensitive[:])
	bytes(s.Errors4xx[:])
	bytes(s.AuthFailures[:])
	bytes(s.Probes[:])
	bytes(s.Refused[:])
	bytes(s.Assets[:])
	bytes(s.Pages60s[:])
	bytes(s.Assets60s[:])
	s.Gaps = u8()
	bytes(s.GapCodes[:])
	s.OtherAgeMs = u16()
	for j := range s.Paths {
		s.Paths[j] = int32(u32())
	}
	s.PathsOnes, s.PathsPrevious = u8(), u8()
	s.SeqPattern, s.SeqID, s.SeqRunDir, s.SeqSecond = u16(), u32(), u8(), u16()
	s.Visits, s.VisitAgeMs = u16(), u32()
	return s, nil
}

// Encode returns the state as the gateways write it (DecodeClientState's
// inverse).
func (s *ClientState) Encode() []byte {
	b := make([]byte, 1, ClientStateSize)
	b[0] = ClientStateVersion
	le := binary.LittleEndian
	b = le.AppendUint32(b, s.LastSecond)
	b = le.AppendUint16(b, s.LastMilli)
	b = le.AppendUint32(b, s.AuxSecond)
	b = append(b, s.R1s[:]...)
	b = append(b, s.R10s[:]...)
	b = append(b, s.R60s[:]...)
	b = append(b, s.Sensitive[:]...)
	b = append(b, s.Errors4xx[:]...)
	b = append(b, s.AuthFailures[:]...)
	b = append(b, s.Probes[:]...)
	b = append(b, s.Refused[:]...)
	b = append(b, s.Assets[:]...)
	b = append(b, s.Pages60s[:]...)
	b = append(b, s.Assets60s[:]...)
	b = append(b, s.Gaps)
	b = append(b, s.GapCodes[:]...)
	b = le.AppendUint16(b, s.OtherAgeMs)
	for _, v := range s.Paths {
		b = le.AppendUint32(b, uint32(v))
	}
	b = append(b, s.PathsOnes, s.PathsPrevious)
	b = le.AppendUint16(b, s.SeqPattern)
	b = le.AppendUint32(b, s.SeqID)
	b = append(b, s.SeqRunDir)
	b = le.AppendUint16(b, s.SeqSecond)
	b = le.AppendUint16(b, s.Visits)
	b = le.AppendUint32(b, s.VisitAgeMs)
	return b
}

// Requests10s returns the client's requests in each 10 s bucket of the
// last minute as of nowMs, oldest first: the 6 buckets whose start is
// within the last 60 s. A bucket the ring no longer holds reads 0.
func (s *ClientState) Requests10s(nowMs int64) []Point {
	if s.LastMs() > nowMs {
		nowMs = s.LastMs() // another gateway's clock is ahead
	}
	cur := nowMs / Ring60sWidthMs
	last := s.LastMs() / Ring60sWidthMs
	out := make([]Point, 0, Ring60sBuckets-1)
	for k := cur - (Ring60sBuckets - 2); k <= cur; k++ {
		var n int64
		if k <= last && last-k < Ring60sBuckets {
			n = int64(s.R60s[k%Ring60sBuckets])
		}
		out = append(out, Point{TS: k * Ring60sWidthMs / 1000, Requests: n})
	}
	return out
}
