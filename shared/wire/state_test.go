package wire_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestClientStateRoundTrip(t *testing.T) {
	st := wire.ClientState{LastSecond: 1_800_000_000, LastMilli: 999, AuxSecond: 1_800_000_001, Gaps: 3, SeqRunDir: 4*4 + 0, SeqSecond: 65000, SeqID: 41, Visits: 9, VisitAgeMs: 5000}
	st.R1s[3], st.R10s[5], st.R60s[6], st.Sensitive[1], st.Errors4xx[2], st.AuthFailures[3] = 1, 2, 3, 4, 5, 6
	st.Probes[2], st.Refused[0], st.Refused[3], st.Assets[5], st.OtherAgeMs = 7, 13, 14, 8, 65535
	st.Pages60s[0], st.Pages60s[6], st.Assets60s[0], st.Assets60s[6] = 10, 11, 12, 255
	st.GapCodes[0], st.Paths[0], st.Paths[3], st.PathsOnes, st.PathsPrevious, st.SeqPattern = 99, -5, 7, 2, 42, 0xbeef
	b := st.Encode()
	if len(b) != wire.ClientStateSize {
		t.Fatalf("encoded %d bytes, want %d", len(b), wire.ClientStateSize)
	}
	got, err := wire.DecodeClientState(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != st {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, st)
	}
	if got.SeqRun() != 4 {
		t.Fatalf("SeqRun %d", got.SeqRun())
	}
	if got.LastMs() != 1_800_000_000_999 {
		t.Fatalf("LastMs %d", got.LastMs())
	}
	if _, err := wire.DecodeClientState(b[:len(b)-1]); err == nil {
		t.Fatal("a short state decoded")
	}
	b[0] = wire.ClientStateVersion - 1
	if _, err := wire.DecodeClientState(b); err == nil {
		t.Fatal("an older version decoded")
	}
	// Every field has its own bytes: each byte of the record is some field's.
	var full wire.ClientState
	enc := full.Encode()
	for i := 1; i < len(enc); i++ {
		flipped := append([]byte(nil), enc...)
		flipped[i] = 0xa5
		got, err := wire.DecodeClientState(flipped)
		if err != nil {
			t.Fatal(err)
		}
		if got == full || !bytes.Equal(got.Encode(), flipped) {
			t.Fatalf("byte %d belongs to no field", i)
		}
	}
}

// An older gateway's state (version 4, 119 bytes; version 5, 133 bytes,
// before the refusals ring) is no state to this one.
func TestOlderStateIsNone(t *testing.T) {
	for version, size := range map[byte]int{4: 119, 5: 133} {
		old := make([]byte, size)
		old[0] = version
		if _, err := wire.DecodeClientState(old); err == nil {
			t.Fatalf("a version-%d state decoded", version)
		}
	}
}

// The refusals ring follows the probes ring (the Lua scripts' offsets
// depend on it), and the record stays within Redis's 160-byte allocation
// (156 bytes of string).
func TestRefusedLayout(t *testing.T) {
	if wire.ClientStateSize > 156 {
		t.Fatalf("%d bytes: past Redis's 160-byte size class", wire.ClientStateSize)
	}
	var st wire.ClientState
	st.Probes[3], st.Refused[0], st.Refused[3] = 1, 2, 3
	b := st.Encode()
	// version, I4 H I4, 21+11+7 request rings, 4 aux rings of 4 before it
	const at = 1 + 4 + 2 + 4 + 21 + 11 + 7 + 4*4
	if b[at-1] != 1 || b[at] != 2 || b[at+3] != 3 {
		t.Fatalf("refusals ring not at byte %d: % x", at, b[at-1:at+4])
	}
}

// TestGapCodes: every gap from 0 to a minute comes back within 2.3%
// (half a 4.4% step) or 1 ms.
func TestGapCodes(t *testing.T) {
	for ms := 0.0; ms <= 60000; ms += 1 + ms/100 {
		got := wire.GapMs(wire.GapCode(ms))
		if d := math.Abs(got - ms); d > 1 && d > 0.023*ms {
			t.Fatalf("gap %v ms reads %v", ms, got)
		}
	}
	if wire.GapCode(1e9) != 255 || wire.GapCode(-5) != 0 {
		t.Fatal("codes are clamped to [0, 255]")
	}
}

// A nibble ring packs two buckets a byte, the even one low.
func TestNibbleRing(t *testing.T) {
	var st wire.ClientState
	r := wire.NibbleRing(st.R1s[:])
	for i := range int64(wire.Ring1sBuckets) {
		r.Set(i, uint8(i%16))
	}
	for i := range int64(wire.Ring1sBuckets) {
		if r.At(i) != uint8(i%16) {
			t.Fatalf("bucket %d reads %d", i, r.At(i))
		}
	}
	if st.R1s[0] != 0x10 || st.R1s[20] != 0x08 {
		t.Fatalf("packed %x", st.R1s)
	}
	r.Set(3, 0)
	if r.At(2) != 2 || r.At(3) != 0 || r.At(4) != 4 {
		t.Fatal("Set touched its neighbour")
	}
}
