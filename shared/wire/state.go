package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// ClientKey names a client's traffic state: one Redis string per client
// (see ClientState), hash-tagged like BanKey so a client's keys share a
// Redis Cluster slot.
func ClientKey(prefix, ip string) string { return prefix + "{" + ip + "}" }

// ClientStateVersion is the first byte of every state the gateways write.
const ClientStateVersion = 1

// ClientStateSize is the length of a version-1 state in bytes.
const ClientStateSize = 132

// The rings of a client's state: Buckets buckets of Width each. A sliding
// window of (Buckets-1)×Width ending at t is the sum of the Buckets-1 newest
// buckets plus the oldest one weighted by the part of it still inside the
// window.
const (
	Ring1sBuckets, Ring1sWidthMs   = 11, 100  // 1 s window, 100 ms buckets
	Ring10sBuckets, Ring10sWidthMs = 6, 2000  // 10 s window, 2 s buckets
	Ring60sBuckets, Ring60sWidthMs = 7, 10000 // 60 s window, 10 s buckets
	AuxBuckets, AuxWidthSeconds    = 4, 20    // 60 s windows of sensitive hits, 4xx and auth failures
	MaxGaps                        = 11       // inter-arrival gaps kept (the last 12 requests)
	PathBits                       = 128      // distinct-paths bitmap (linear counting)
	PathEpochMs                    = 60000    // the bitmap restarts every minute
	MaxGapMs                       = math.MaxUint16
)

// ClientState is a client's traffic state as the gateways keep it in Redis
// under ClientKey: a fixed little-endian record, written by the gateway's
// Lua scripts (gateway/internal/traffic) and read by the dashboard. The
// layout, field by field:
//
//	B     version (ClientStateVersion)
//	d     last request, Unix ms
//	I4    last update of the Aux rings, Unix s
//	11×B  requests, 100 ms buckets        (saturate at 255)
//	6×H   requests, 2 s buckets           (saturate at 65535)
//	7×H   requests, 10 s buckets          (saturate at 65535)
//	4×B   sensitive-path hits, 20 s buckets
//	4×H   upstream 4xx answers, 20 s buckets
//	4×B   upstream 401/403 answers, 20 s buckets
//	B     gaps kept; 11×H inter-arrival gaps in ms, newest first
//	4×i4  distinct-paths bitmap of this minute; B its bits set; H estimate
//	      of the last minute
//	I4    enumeration pattern hash; d last id; B run; b direction
//	H     visits in the fixed visit window; d its start, Unix ms
//
// Bucket i of a ring holds the requests of every time t with
// floor(t/width) mod buckets == i that is still inside the ring.
type ClientState struct {
	LastMs        float64
	AuxSecond     uint32
	R1s           [Ring1sBuckets]uint8
	R10s          [Ring10sBuckets]uint16
	R60s          [Ring60sBuckets]uint16
	Sensitive     [AuxBuckets]uint8
	Errors4xx     [AuxBuckets]uint16
	AuthFailures  [AuxBuckets]uint8
	Gaps          int
	GapMs         [MaxGaps]uint16
	Paths         [PathBits / 32]int32
	PathsOnes     uint8
	PathsPrevious uint16
	SeqPattern    uint32
	SeqID         float64
	SeqRun        uint8
	SeqDir        int8
	Visits        uint16
	VisitStartMs  float64
}

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
	f64 := func() float64 { i += 8; return math.Float64frombits(le.Uint64(b[i-8:])) }
	s.LastMs = f64()
	s.AuxSecond = u32()
	for j := range s.R1s {
		s.R1s[j] = u8()
	}
	for j := range s.R10s {
		s.R10s[j] = u16()
	}
	for j := range s.R60s {
		s.R60s[j] = u16()
	}
	for j := range s.Sensitive {
		s.Sensitive[j] = u8()
	}
	for j := range s.Errors4xx {
		s.Errors4xx[j] = u16()
	}
	for j := range s.AuthFailures {
		s.AuthFailures[j] = u8()
	}
	s.Gaps = int(u8())
	for j := range s.GapMs {
		s.GapMs[j] = u16()
	}
	for j := range s.Paths {
		s.Paths[j] = int32(u32())
	}
	s.PathsOnes = u8()
	s.PathsPrevious = u16()
	s.SeqPattern = u32()
	s.SeqID = f64()
	s.SeqRun = u8()
	s.SeqDir = int8(u8())
	s.Visits = u16()
	s.VisitStartMs = f64()
	return s, nil
}

// Encode returns the state as the gateways write it (DecodeClientState's
// inverse).
func (s *ClientState) Encode() []byte {
	b := make([]byte, 1, ClientStateSize)
	b[0] = ClientStateVersion
	le := binary.LittleEndian
	f64 := func(v float64) { b = le.AppendUint64(b, math.Float64bits(v)) }
	f64(s.LastMs)
	b = le.AppendUint32(b, s.AuxSecond)
	b = append(b, s.R1s[:]...)
	for _, v := range s.R10s {
		b = le.AppendUint16(b, v)
	}
	for _, v := range s.R60s {
		b = le.AppendUint16(b, v)
	}
	b = append(b, s.Sensitive[:]...)
	for _, v := range s.Errors4xx {
		b = le.AppendUint16(b, v)
	}
	b = append(b, s.AuthFailures[:]...)
	b = append(b, uint8(s.Gaps))
	for _, v := range s.GapMs {
		b = le.AppendUint16(b, v)
	}
	for _, v := range s.Paths {
		b = le.AppendUint32(b, uint32(v))
	}
	b = append(b, s.PathsOnes)
	b = le.AppendUint16(b, s.PathsPrevious)
	b = le.AppendUint32(b, s.SeqPattern)
	f64(s.SeqID)
	b = append(b, s.SeqRun, uint8(s.SeqDir))
	b = le.AppendUint16(b, s.Visits)
	f64(s.VisitStartMs)
	return b
}

// Requests10s returns the client's requests in each 10 s bucket of the
// last minute as of nowMs, oldest first: the 6 buckets whose start is
// within the last 60 s. A bucket the ring no longer holds reads 0.
func (s *ClientState) Requests10s(nowMs int64) []Point {
	if s.LastMs > float64(nowMs) {
		nowMs = int64(s.LastMs) // another gateway's clock is ahead
	}
	cur := nowMs / Ring60sWidthMs
	last := int64(s.LastMs) / Ring60sWidthMs
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
