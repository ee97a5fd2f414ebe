package wire_test

import (
	"testing"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestClientStateRoundTrip(t *testing.T) {
	st := wire.ClientState{LastMs: 1.8e12, AuxSecond: 1_800_000_000, Gaps: 3, SeqDir: -1, SeqRun: 4, SeqID: 41, Visits: 9, VisitStartMs: 1.8e12 - 5000}
	st.R1s[3], st.R10s[5], st.R60s[6], st.Sensitive[1], st.Errors4xx[2], st.AuthFailures[3] = 1, 2, 3, 4, 5, 6
	st.GapMs[0], st.Paths[0], st.Paths[3], st.PathsPrevious, st.SeqPattern = 300, -5, 7, 42, 0xdeadbeef
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
	if _, err := wire.DecodeClientState(b[:len(b)-1]); err == nil {
		t.Fatal("a short state decoded")
	}
	b[0] = 2
	if _, err := wire.DecodeClientState(b); err == nil {
		t.Fatal("an unknown version decoded")
	}
}
