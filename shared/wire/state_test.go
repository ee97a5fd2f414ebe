package wire_test

import (
	"math"
	"testing"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestClientStateRoundTrip(t *testing.T) {
	st := wire.ClientState{LastSecond: 1_800_000_000, LastMilli: 999, AuxSecond: 1_800_000_001, Gaps: 3, SeqRunDir: 4*4 + 0, SeqSecond: 65000, SeqID: 41, Visits: 9, VisitAgeMs: 5000}
	st.R1s[3], st.R10s[5], st.R60s[6], st.Sensitive[1], st.Errors4xx[2], st.AuthFailures[3] = 1, 2, 3, 4, 5, 6
	st.Probes[2], st.Assets[5], st.OtherAgeMs = 7, 8, 65535
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
	b[0] = 3
	if _, err := wire.DecodeClientState(b); err == nil {
		t.Fatal("an older version decoded")
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
