package framing

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

// accepted are streams of requests the policy accepts whole, with how
// many requests each holds.
var accepted = []struct {
	name string
	in   string
	n    int
}{
	{"one GET", get, 1},
	{"pipelined", get + get + get, 3},
	{"length body", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + get, 2},
	{"length with OWS", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \t 5 \t\r\n\r\nhello", 1},
	{"zero length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + get, 2},
	{"leading zeros", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello", 1},
	{"chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n" + get, 2},
	{"chunked any case with OWS", "POST /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding:\t CHUNKED \r\n\r\n0\r\n\r\n", 1},
	{"chunk extension and trailer", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v a\"\r\nhello\r\n000;x\r\nX-Sum: 1\r\nY: 2\r\n\r\n" + get, 2},
	{"HTTP/1.0 with length", "POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", 1},
	{"CRLF after a POST", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n\r\n" + get, 2},
	{"look-alike names", "GET / HTTP/1.1\r\nHost: a\r\nContent-Lengthy: 5\r\nX-Content-Length: 5\r\nTransfer-Encodings: gzip\r\nContent: x\r\nT: y\r\n\r\n" + get, 2},
	{"obs-text and tabs in values", "GET /caf\xc3\xa9?q=1 HTTP/1.1\r\nHost: a\r\nX: a\tb \xff\r\nEmpty:\r\n\r\n", 1},
	{"absolute form", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 1},
}

// refused are streams with the index of the request the policy refuses
// and why.
var refused = []struct {
	name  string
	in    string
	index int
	why   Reason
}{
	{"length and chunked", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 0, BothLengths},
	{"chunked and length", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 0, BothLengths},
	{"length and tab chunked", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", 0, BothLengths},
	{"length and CHUNKED", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", 0, BothLengths},
	{"chunked, identity", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"identity", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"gzip, chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"x-chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x-chunked\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"chunked;foo", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;foo\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"chunked x", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"chunke", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunke\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"empty coding", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 0, UnsupportedTransferEncoding},
	{"vertical tab", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \vchunked\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"NUL after", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x00\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"two codings", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, DuplicateTransferEncoding},
	{"coding in HTTP/1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, TransferEncodingInHTTP10},
	{"plus length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 0, BadLength},
	{"length list", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello", 0, BadLength},
	{"two numbers", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:  5 5\r\n\r\nhello", 0, BadLength},
	{"negative", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 0, BadLength},
	{"hex length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 0, BadLength},
	{"empty length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 0, BadLength},
	{"huge length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", 0, BadLength},
	{"length VT", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\v\r\n\r\nhello", 0, BadLength},
	{"same length twice", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 0, DuplicateLength},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 0, ObsFold},
	{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\n\tchunked\r\n\r\n", 0, UnsupportedTransferEncoding},
	{"space before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, ObsFold},
	{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, SpaceBeforeColon},
	{"tab before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\nhello", 0, SpaceBeforeColon},
	{"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 0, BadHeaderName},
	{"no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 0, BadHeaderName},
	{"bad name byte", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 0, BadHeaderName},
	{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 0, BareLF},
	{"bare LF header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 0, BareLF},
	{"bare LF end", "GET / HTTP/1.1\r\nHost: a\r\n\n", 0, BareLF},
	{"bare CR", "GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n", 0, BareCR},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 0, BadHeaderValue},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 0, BadHeaderValue},
	{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, BadRequestLine},
	{"tab in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 0, BadRequestLine},
	{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, BadRequestLine},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, BadVersion},
	{"HTTP/2.0", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, BadVersion},
	{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 0, BadVersion},
	{"HTTP/0.9", "GET /\r\n", 0, BadRequestLine},
	{"leading CRLF", "\r\n" + get, 0, BadRequestLine},
	{"CRLF after a GET", get + "\r\n" + get, 1, BadRequestLine},
	{"five CRLF after a POST", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n\r\n\r\n\r" + get, 1, BadRequestLine},
	{"second request bad", get + "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 1, DuplicateLength},
	{"space after size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"space before ext", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"bare LF size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"bare LF ext", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"bare LF data", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 0, BadChunk},
	{"short data", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"no size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 0, BadChunk},
	{"0x size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"negative size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"16 digit size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000005\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"NUL in ext", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\x00\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"long ext", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("x", 1100) + "\r\nhello\r\n0\r\n\r\n", 0, BadChunk},
	{"chunk overhead", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("x", 200)+"\r\nx\r\n", 60) + "0\r\n\r\n", 0, BadChunk},
	{"trailer bare LF", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n" + get, 0, BareLF},
	{"trailer length", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", 0, BadTrailer},
	{"trailer coding", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\ntransfer-encoding: chunked\r\n\r\n", 0, BadTrailer},
	{"trailer fold", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 0, ObsFold},
	{"long trailer", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 25) + "\r\n", 0, BadTrailer},
}

// feed scans in in pieces of size step (0: whole).
func feed(in string, step int) *Scanner {
	var s Scanner
	b := []byte(in)
	if step == 0 {
		step = len(b)
	}
	for len(b) > 0 {
		k := min(step, len(b))
		s.Feed(b[:k])
		b = b[k:]
	}
	return &s
}

func TestScannerAccepts(t *testing.T) {
	for _, tc := range accepted {
		for _, step := range []int{0, 1, 2, 7} {
			s := feed(tc.in, step)
			_, why, failed := s.Failed()
			assert.False(t, failed, "%s (step %d): refused: %s", tc.name, step, why)
			assert.Equal(t, tc.n, s.Requests(), "%s (step %d)", tc.name, step)
			assert.Equal(t, sStart, s.state, "%s (step %d): between requests", tc.name, step)
		}
	}
}

func TestScannerRefuses(t *testing.T) {
	for _, tc := range refused {
		for _, step := range []int{0, 1, 3} {
			s := feed(tc.in, step)
			i, why, failed := s.Failed()
			if assert.True(t, failed, "%s (step %d)", tc.name, step) {
				assert.Equal(t, tc.index, i, "%s (step %d)", tc.name, step)
				assert.Equal(t, tc.why, why, "%s (step %d): %s", tc.name, step, why)
			}
		}
	}
}

// A request cut off anywhere is neither accepted nor refused.
func TestScannerWaitsForMore(t *testing.T) {
	in := accepted[6].in // chunked, then a GET
	for k := range len(in) {
		s := feed(in[:k], 1)
		_, _, failed := s.Failed()
		require.False(t, failed, "prefix %q", in[:k])
		require.LessOrEqual(t, s.Requests(), 2)
	}
}

// frame is how one request was delimited: where it ended and how its body
// was framed; and, as Go read it, how many field lines its head and
// trailer held.
type frame struct {
	end      int
	chunked  bool
	declared int64
	fields   int
}

// scannerFrames feeds in one byte at a time to a scanner bounding fields
// at maxFields and records each accepted request's frame.
func scannerFrames(in []byte, maxFields int) (frames []frame, failedAt int, why Reason) {
	s := Scanner{MaxFields: maxFields}
	var heads []frame
	for i := range in {
		h, n := s.heads, s.index
		s.Feed(in[i : i+1])
		if s.heads > h {
			heads = append(heads, frame{chunked: s.chunked, declared: s.declared})
		}
		if s.index > n {
			f := heads[n]
			f.end = i + 1
			frames = append(frames, f)
		}
	}
	if i, why, failed := s.Failed(); failed {
		return frames, i, why
	}
	return frames, -1, None
}

// goFrames reads in the way Go's HTTP server does and records each
// request's frame, until the server would stop reading. bodyErr is the
// index of a request whose body Go found malformed, or -1.
func goFrames(in []byte) (frames []frame, bodyErr int) {
	cr := &countingReader{r: bytes.NewReader(in)}
	br := bufio.NewReaderSize(cr, 4096)
	consumed := func() int { return cr.n - br.Buffered() }
	lastPost := false
	for i := 0; ; i++ {
		if lastPost {
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			_, _ = br.Discard(n)
		}
		start := consumed()
		req, err := http.ReadRequest(br)
		if err != nil || req.ProtoMajor != 1 {
			return frames, -1
		}
		// The head's lines, less the request line and the empty line (Go
		// drops and adds fields in its map: Host, Transfer-Encoding,
		// Cache-Control).
		fields := bytes.Count(in[start:consumed()], []byte("\n")) - 2
		f := frame{chunked: len(req.TransferEncoding) > 0, declared: req.ContentLength}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && consumed() == len(in) {
				return frames, -1 // cut off, not malformed
			}
			return frames, i
		}
		f.end = consumed()
		for _, vv := range req.Trailer {
			fields += len(vv)
		}
		f.fields = fields
		frames = append(frames, f)
		if req.Close || (req.Header.Get("Expect") != "" && !strings.EqualFold(req.Header.Get("Expect"), "100-continue")) {
			return frames, -1 // the server closes the connection here
		}
		lastPost = req.Method == http.MethodPost
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// checkAgainstGo is the fuzz property: wherever both the scanner and Go
// read a request whole, they delimit it identically; a request the
// scanner accepts is never one whose body Go finds malformed (Go might
// then go on reading mid-body); and a request Go reads whole is one the
// scanner reads whole too, unless it refused that one or an earlier one.
func checkAgainstGo(t *testing.T, in []byte) {
	checkFields(t, in, 0)
}

// checkFields is checkAgainstGo for a scanner bounding fields at
// maxFields (0: none), and more: a request the scanner accepts has at most
// maxFields field lines as Go reads it, and one it refuses for too many
// fields has more, if Go reads it whole.
func checkFields(t *testing.T, in []byte, maxFields int) {
	sf, failedAt, why := scannerFrames(in, maxFields)
	gf, bodyErr := goFrames(in)
	if maxFields > 0 {
		for i := 0; i < len(sf) && i < len(gf); i++ {
			if gf[i].fields > maxFields {
				t.Fatalf("request %d of %q: accepted with %d fields, more than %d", i, in, gf[i].fields, maxFields)
			}
		}
		if why == TooManyFields && failedAt < len(gf) && gf[failedAt].fields <= maxFields {
			t.Fatalf("request %d of %q: refused for too many fields, Go read %d (bound %d)", failedAt, in, gf[failedAt].fields, maxFields)
		}
	}
	for i := 0; i < len(sf) && i < len(gf); i++ {
		if sf[i].end != gf[i].end || sf[i].chunked != gf[i].chunked || !sf[i].chunked && sf[i].declared != gf[i].declared {
			t.Fatalf("request %d of %q: scanner %+v, Go %+v", i, in, sf[i], gf[i])
		}
	}
	if bodyErr >= 0 && bodyErr < len(sf) {
		t.Fatalf("request %d of %q: the scanner accepted a body Go refused", bodyErr, in)
	}
	if len(gf) > len(sf) && (failedAt < 0 || failedAt > len(sf)) {
		t.Fatalf("request %d of %q: Go read it whole (%+v), the scanner neither did nor refused it", len(sf), in, gf[len(sf)])
	}
	if failedAt >= 0 && failedAt != len(sf) {
		t.Fatalf("%q: refused request %d after accepting %d", in, failedAt, len(sf))
	}
}

func TestScannerAgreesWithGo(t *testing.T) {
	for _, tc := range accepted {
		checkAgainstGo(t, []byte(tc.in))
		gf, _ := goFrames([]byte(tc.in))
		assert.Len(t, gf, tc.n, "%s: Go reads the same requests", tc.name)
	}
	for _, tc := range refused {
		checkAgainstGo(t, []byte(tc.in))
	}
}

// FuzzFraming: the scanner never panics, and never accepts a request Go
// would delimit differently.
func FuzzFraming(f *testing.F) {
	for _, tc := range accepted {
		f.Add([]byte(tc.in))
	}
	for _, tc := range refused {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var whole Scanner
		whole.Feed(in) // in one piece, for the fast paths
		checkAgainstGo(t, in)
		sf, failedAt, _ := scannerFrames(in, 0)
		if i, _, failed := whole.Failed(); failed != (failedAt >= 0) || failed && i != failedAt || whole.Requests() != len(sf) {
			t.Fatalf("%q: whole and byte by byte differ", in)
		}
	})
}

// fieldCases are streams a scanner bounding fields at 3 reads: how many
// requests it accepts and, when it refuses one, which.
var fieldCases = []struct {
	name     string
	in       string
	requests int
	refused  int // -1: none
	cut      string
}{
	{"three fields", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 1, -1, ""},
	{"four fields", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, 0, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n"},
	{"a count per request", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n" + "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 2, -1, ""},
	{"the second request over", get + "GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\nA: 3\r\nA: 4\r\n\r\n", 1, 1, get + "GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\nA: 3\r\n"},
	{"empty values count", "GET / HTTP/1.1\r\nA:\r\nB:\r\nC:\r\nD:\r\n\r\n", 0, 0, "GET / HTTP/1.1\r\nA:\r\nB:\r\nC:\r\n"},
	{"framing fields count", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nA: 1\r\n\r\n", 0, 0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"},
	{"trailer within", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n\r\n" + get, 2, -1, ""},
	{"trailer over", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: 1\r\nU: 2\r\n\r\n" + get, 0, 0, ""},
}

func TestScannerCountsFields(t *testing.T) {
	for _, tc := range fieldCases {
		for _, step := range []int{0, 1, 2, 5} {
			s := Scanner{MaxFields: 3}
			b := []byte(tc.in)
			k := step
			if k == 0 {
				k = len(b)
			}
			cut := int64(-1)
			for off := 0; off < len(b); off += k {
				s.Feed(b[off:min(off+k, len(b))])
				if _, _, failed := s.Failed(); failed && cut < 0 {
					cut = s.cut
				}
			}
			i, why, failed := s.Failed()
			assert.Equal(t, tc.requests, s.Requests(), "%s (step %d)", tc.name, step)
			if tc.refused < 0 {
				assert.False(t, failed, "%s (step %d): %s", tc.name, step, why)
				continue
			}
			if assert.True(t, failed, "%s (step %d)", tc.name, step) {
				assert.Equal(t, tc.refused, i, "%s (step %d)", tc.name, step)
				assert.Equal(t, TooManyFields, why, "%s (step %d)", tc.name, step)
				assert.EqualValues(t, len(tc.cut), cut, "%s (step %d): where the head is cut (0: not, a trailer)", tc.name, step)
			}
		}
		checkFields(t, []byte(tc.in), 3)
	}
}

// chunkConn delivers its input step bytes per Read.
type chunkConn struct {
	net.Conn
	in   []byte
	step int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.in)
	c.in = c.in[n:]
	return n, nil
}

// A head over the bound reaches the server ended where the first field
// over it begins, however the bytes arrive: the server parses the bound's
// worth of fields, and nothing after the cut.
func TestConnCutsTheHead(t *testing.T) {
	in := get + "GET /over HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n" + get
	for _, step := range []int{1, 2, 3, 7, 4096} {
		c := &Conn{Conn: &chunkConn{in: []byte(in), step: step}}
		c.s.MaxFields = 3
		br := bufio.NewReader(c)
		first, err := http.ReadRequest(br)
		require.NoError(t, err, "step %d", step)
		assert.Equal(t, "/", first.URL.Path)
		over, err := http.ReadRequest(br)
		require.NoError(t, err, "step %d", step)
		assert.Equal(t, "/over", over.URL.Path)
		assert.Equal(t, http.Header{"A": {"1"}, "B": {"2"}}, over.Header, "step %d: Host, A, B; C and D cut", step)
		assert.Equal(t, "a", over.Host)
		rest, _ := io.ReadAll(br)
		assert.NotContains(t, string(rest), "C: 3", "step %d", step)
		i, why, failed := c.s.Failed()
		assert.True(t, failed)
		assert.Equal(t, 1, i)
		assert.Equal(t, TooManyFields, why)
	}
}

// FuzzFieldCount: with a bound on fields, the scanner still agrees with Go
// on framing, accepts no request with more fields than the bound and
// refuses none for too many that has fewer.
func FuzzFieldCount(f *testing.F) {
	for _, tc := range fieldCases {
		f.Add([]byte(tc.in), uint8(3))
	}
	for _, tc := range accepted {
		f.Add([]byte(tc.in), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, bound uint8) {
		maxFields := int(bound%8) + 1
		checkFields(t, in, maxFields)
		whole := Scanner{MaxFields: maxFields}
		whole.Feed(in)
		sf, failedAt, why := scannerFrames(in, maxFields)
		if i, w, failed := whole.Failed(); failed != (failedAt >= 0) || failed && (i != failedAt || w != why) || whole.Requests() != len(sf) {
			t.Fatalf("%q (bound %d): whole and byte by byte differ", in, maxFields)
		}
	})
}

// A browser-like request head: what every request costs.
var benchHead = []byte("GET /api/v1/products/12345?include=reviews&page=2 HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"Referer: https://shop.example.com/products\r\n" +
	"X-Request-ID: 7f3c2a1b9e8d4c6a\r\n" +
	"Connection: keep-alive\r\n\r\n")

func BenchmarkScannerHead(b *testing.B) {
	var s Scanner
	b.SetBytes(int64(len(benchHead)))
	b.ReportAllocs()
	for b.Loop() {
		s.Feed(benchHead)
	}
	if _, why, failed := s.Failed(); failed {
		b.Fatal(why)
	}
}

func BenchmarkScannerChunked(b *testing.B) {
	body := bytes.Repeat([]byte("4000\r\n"+strings.Repeat("x", 0x4000)+"\r\n"), 4)
	msg := append([]byte("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), body...)
	msg = append(msg, "0\r\n\r\n"...)
	var s Scanner
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		for p := msg; len(p) > 0; p = p[min(len(p), 4096):] {
			s.Feed(p[:min(len(p), 4096)])
		}
	}
	if _, why, failed := s.Failed(); failed {
		b.Fatal(why)
	}
}
