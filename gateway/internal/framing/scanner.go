// Package framing refuses HTTP/1.1 requests whose framing is ambiguous:
// the ones a front proxy and the gateway could split into requests
// differently (request smuggling, RFC 9112 §11.2).
//
// Go's HTTP server cannot be asked how it framed a request: it deletes
// Content-Length when Transfer-Encoding is chunked, joins folded lines and
// accepts bare LF. So a Scanner runs over the raw bytes of every connection
// (Listen wraps the listener), mirrors the framing (the head, Content-Length
// bytes, chunked encoding) and remembers the index of the first request on
// the connection that broke the policy below. Guard, the outermost handler,
// counts the requests the server hands it on that connection; it answers
// that one, and any later one, 400 JSON (431 for too many header fields)
// and the connection is closed. A head with more fields than the bound
// never reaches the server's parser whole (Conn ends it at the bound), so
// the server never builds a map of thousands of fields.
//
// The policy, stricter than RFC 9112 where the RFC lets recipients choose:
//   - request line: method SP request-target SP HTTP/1.1 or HTTP/1.0, one
//     SP each, a token method, a target of visible bytes;
//   - every line of the head, of the chunked framing and of the trailer
//     ends in CRLF: a bare LF, or a CR not followed by LF, is refused;
//   - a header name is a token followed at once by ':' (no whitespace
//     before the colon); a value holds no control character but HTAB;
//     no obs-fold line, no whitespace before the first header;
//   - at most one Content-Length, 1 to 18 digits with optional SP/HTAB
//     around them (no sign, no list, not empty);
//   - at most one Transfer-Encoding, exactly "chunked" (any case, optional
//     SP/HTAB around it), only in HTTP/1.1 and never with Content-Length;
//   - chunked: a chunk size of 1 to 15 hex digits followed at once by ';'
//     or CRLF, an extension of visible bytes, CRLF after the data, at most
//     1 KiB per chunk line and half Go's allowance of chunk overhead; a
//     trailer of at most 2 KiB whose fields follow the header rules and
//     name neither Content-Length nor Transfer-Encoding;
//   - with Scanner.MaxFields set, at most that many field lines in a
//     request's head and trailer together (TooManyFields, answered 431).
//
// After a POST, up to four CR or LF bytes before the next request are
// skipped, as Go's server skips them.
package framing

// Reason says why a request's framing was refused.
type Reason uint8

// The reasons, in the order the head and body are read.
const (
	None Reason = iota
	BadRequestLine
	BadVersion
	BareLF
	BareCR
	ObsFold
	BadHeaderName
	SpaceBeforeColon
	BadHeaderValue
	TooManyFields
	DuplicateLength
	BadLength
	DuplicateTransferEncoding
	UnsupportedTransferEncoding
	TransferEncodingInHTTP10
	BothLengths
	BadChunk
	BadTrailer
	numReasons
)

var reasonText = [numReasons]string{
	None:                        "",
	BadRequestLine:              "malformed request line",
	BadVersion:                  "HTTP version other than HTTP/1.1 or HTTP/1.0",
	BareLF:                      "line ends in a bare LF",
	BareCR:                      "CR not followed by LF",
	ObsFold:                     "folded header line or whitespace before a header name",
	BadHeaderName:               "invalid header name",
	SpaceBeforeColon:            "whitespace between a header name and its colon",
	BadHeaderValue:              "control character in a header value",
	TooManyFields:               "too many header fields",
	DuplicateLength:             "more than one Content-Length",
	BadLength:                   "invalid Content-Length",
	DuplicateTransferEncoding:   "more than one Transfer-Encoding",
	UnsupportedTransferEncoding: "Transfer-Encoding other than chunked",
	TransferEncodingInHTTP10:    "Transfer-Encoding in an HTTP/1.0 request",
	BothLengths:                 "both Content-Length and Transfer-Encoding",
	BadChunk:                    "malformed chunked body",
	BadTrailer:                  "malformed trailer or a framing field in it",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonText[r]
	}
	return "unknown"
}

type state uint8

const (
	sStart state = iota
	sMethod
	sTarget
	sVersion
	sLineStart // a header or trailer line, or the empty line ending the section
	sName
	sValue
	sLength
	sCoding
	sLF // CR seen, LF expected; then s.after
	sBody
	sChunkSize
	sChunkExt
	sChunkData
	sChunkCR
	sFailed
)

// What follows a CRLF.
const (
	aLine = iota
	aHeadEnd
	aChunkLine
	aChunkData
	aTrailerEnd
)

// Which framing field the current header line is.
const (
	fOther = iota
	fLength
	fCoding
)

var fieldName = [...]string{fLength: "content-length", fCoding: "transfer-encoding"}

const (
	maxLengthDigits = 18 // < 2^63
	maxChunkDigits  = 15 // < 2^60
	maxChunkLine    = 1 << 10
	maxTrailer      = 2 << 10
	maxExcess       = 8 << 10 // Go's chunked reader gives up at 16 KiB
	postSkip        = 4       // CR/LF Go's server discards after a POST
)

// Scanner follows the framing of the requests on one connection. Feed it
// every byte the server reads, in order. The zero value is ready.
type Scanner struct {
	// MaxFields bounds the field lines of one request, its head's and its
	// trailer's together; 0: no bound. Set it before the first Feed.
	MaxFields int

	state  state
	after  uint8 // aLine, …: what the LF in sLF completes
	field  uint8 // fOther, fLength, fCoding
	sub    uint8 // position in a Content-Length or Transfer-Encoding value
	skip   uint8 // CR/LF that may precede the next request
	post   bool  // the method so far is (a prefix of) POST
	http10 bool
	hasLen bool
	hasTE  bool
	chunk  bool // inside a chunked body or its trailer

	index  int   // the request being read; also the number read whole
	fields int   // field lines of the request being read, head and trailer
	n      int   // bytes in the current method, target, version, name or chunk line
	length int64 // Content-Length, then bytes left of the body or chunk
	excess int64 // chunk overhead, as Go's chunked reader counts it
	off    int64 // bytes fed so far
	mark   int64 // offset of the trailer's first byte
	cut    int64 // TooManyFields in a head: offset of the first field over the bound
	reason Reason

	// heads counts completed heads and chunked/declared describe the last
	// one: what the fuzz test compares with net/http.
	heads    int
	chunked  bool
	declared int64
}

// Failed reports the index (from 0) of the first request on the connection
// whose framing was refused, and why.
func (s *Scanner) Failed() (index int, why Reason, failed bool) {
	return s.index, s.reason, s.state == sFailed
}

// Requests is the number of requests read whole and accepted.
func (s *Scanner) Requests() int { return s.index }

func (s *Scanner) fail(r Reason) {
	s.state, s.reason = sFailed, r
}

// Feed scans the next bytes of the connection.
func (s *Scanner) Feed(p []byte) {
	base := s.off
	s.off += int64(len(p))
	// long reports whether a trailer runs past its limit at p[j].
	long := func(j int) bool { return s.chunk && base+int64(j)-s.mark > maxTrailer }
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch s.state {
		case sFailed:
			return

		case sStart:
			if b == '\r' || b == '\n' {
				if s.skip > 0 {
					s.skip--
					continue
				}
				s.fail(BadRequestLine)
				return
			}
			if class[b]&cToken == 0 {
				s.fail(BadRequestLine)
				return
			}
			s.skip, s.post, s.n, s.state, s.fields = 0, b == 'P', 1, sMethod, 0
			s.http10, s.hasLen, s.hasTE, s.chunk, s.length = false, false, false, false, 0

		case sMethod:
			switch {
			case class[b]&cToken != 0:
				s.post = s.post && s.n < 4 && b == "POST"[s.n]
				s.n++
			case b == ' ':
				s.post = s.post && s.n == 4
				s.n, s.state = 0, sTarget
			default:
				s.fail(BadRequestLine)
				return
			}

		case sTarget:
			j := i
			for j < len(p) && class[p[j]]&cTarget != 0 {
				j++
			}
			s.n += j - i
			if j == len(p) {
				return
			}
			i = j
			if p[i] != ' ' || s.n == 0 {
				s.fail(BadRequestLine)
				return
			}
			s.n, s.state = 0, sVersion

		case sVersion:
			const prefix = "HTTP/1."
			switch {
			case s.n < len(prefix):
				if b != prefix[s.n] {
					s.fail(BadVersion)
					return
				}
			case s.n == len(prefix):
				if b != '0' && b != '1' {
					s.fail(BadVersion)
					return
				}
				s.http10 = b == '0'
			case b == '\r':
				s.state, s.after = sLF, aLine
			case b == '\n':
				s.fail(BareLF)
				return
			default:
				s.fail(BadVersion)
				return
			}
			s.n++

		case sLineStart:
			if long(i) {
				s.fail(BadTrailer)
				return
			}
			switch {
			case b == '\r':
				s.state, s.after = sLF, aHeadEnd
				if s.chunk {
					s.after = aTrailerEnd
				}
			case b == '\n':
				s.fail(BareLF)
				return
			case b == ' ' || b == '\t':
				s.fail(ObsFold)
				return
			case class[b]&cToken == 0:
				s.fail(BadHeaderName)
				return
			default:
				if s.fields++; s.MaxFields > 0 && s.fields > s.MaxFields {
					if !s.chunk {
						s.cut = base + int64(i)
					}
					s.fail(TooManyFields)
					return
				}
				s.state, s.field = sName, fOther
				switch b | 0x20 {
				case 'c':
					s.field = fLength
				case 't':
					s.field = fCoding
				}
				s.n = 1
			}

		case sName:
			if s.field == fOther {
				j := i
				for j < len(p) && class[p[j]]&cToken != 0 {
					j++
				}
				s.n += j - i
				if long(j) {
					s.fail(BadTrailer)
					return
				}
				if j == len(p) {
					return
				}
				i, b = j, p[j]
			}
			switch {
			case class[b]&cToken != 0:
				if f := fieldName[s.field]; s.n >= len(f) || b|0x20 != f[s.n] {
					s.field = fOther
				}
				s.n++
			case b == ':':
				if s.field != fOther && s.n != len(fieldName[s.field]) {
					s.field = fOther
				}
				if !s.colon() {
					return
				}
			case b == ' ' || b == '\t':
				s.fail(SpaceBeforeColon)
				return
			default:
				s.fail(BadHeaderName)
				return
			}

		case sValue:
			j := i
			for j < len(p) && class[p[j]]&cValue != 0 {
				j++
			}
			if long(j) {
				s.fail(BadTrailer)
				return
			}
			if j == len(p) {
				return
			}
			i = j
			switch p[i] {
			case '\r':
				s.state, s.after = sLF, aLine
			case '\n':
				s.fail(BareLF)
				return
			default:
				s.fail(BadHeaderValue)
				return
			}

		case sLength: // OWS 1*DIGIT OWS
			switch {
			case b == ' ' || b == '\t':
				if s.sub == 1 {
					s.sub = 2
				}
			case b >= '0' && b <= '9':
				if s.sub == 2 || s.n == maxLengthDigits {
					s.fail(BadLength)
					return
				}
				s.sub = 1
				s.n++
				s.length = s.length*10 + int64(b-'0')
			case b == '\r' && s.sub != 0:
				s.state, s.after = sLF, aLine
			case b == '\n':
				s.fail(BareLF)
				return
			default:
				s.fail(BadLength)
				return
			}

		case sCoding: // OWS "chunked" OWS
			const chunked = "chunked"
			switch {
			case b == ' ' || b == '\t':
				if s.sub == 1 {
					if s.n != len(chunked) {
						s.fail(UnsupportedTransferEncoding)
						return
					}
					s.sub = 2
				}
			case b == '\r' && (s.sub == 2 || s.sub == 1 && s.n == len(chunked)):
				s.state, s.after = sLF, aLine
			case b == '\n':
				s.fail(BareLF)
				return
			case s.sub != 2 && s.n < len(chunked) && b|0x20 == chunked[s.n]:
				s.sub = 1
				s.n++
			default:
				s.fail(UnsupportedTransferEncoding)
				return
			}

		case sLF:
			if b != '\n' {
				s.fail(BareCR)
				return
			}
			switch s.after {
			case aLine:
				s.state = sLineStart
			case aHeadEnd:
				s.headEnd()
			case aChunkLine:
				s.chunkLine(base + int64(i) + 1)
			case aChunkData:
				s.state, s.n, s.length = sChunkSize, 0, 0
			case aTrailerEnd:
				s.done()
			}

		case sBody, sChunkData:
			k := min(int64(len(p)-i), s.length)
			s.length -= k
			i += int(k) - 1
			if s.length == 0 {
				if s.state == sBody {
					s.done()
				} else {
					s.state = sChunkCR
				}
			}

		case sChunkSize:
			switch v := unhex[b]; {
			case v < 16:
				if s.n == maxChunkDigits {
					s.fail(BadChunk)
					return
				}
				s.n++
				s.length = s.length<<4 | int64(v)
			case s.n > 0 && b == ';':
				s.n++
				s.state = sChunkExt
			case s.n > 0 && b == '\r':
				s.state, s.after = sLF, aChunkLine
			default:
				s.fail(BadChunk)
				return
			}

		case sChunkExt:
			j := i
			for j < len(p) && class[p[j]]&cValue != 0 {
				j++
			}
			if s.n += j - i; s.n > maxChunkLine {
				s.fail(BadChunk)
				return
			}
			if j == len(p) {
				return
			}
			i = j
			if p[i] != '\r' {
				s.fail(BadChunk)
				return
			}
			s.state, s.after = sLF, aChunkLine

		case sChunkCR:
			if b != '\r' {
				s.fail(BadChunk)
				return
			}
			s.state, s.after = sLF, aChunkData
		}
	}
}

// colon ends a header name: the value's grammar depends on the field.
func (s *Scanner) colon() bool {
	switch {
	case s.chunk:
		if s.field != fOther {
			s.fail(BadTrailer)
			return false
		}
		s.state = sValue
	case s.field == fLength:
		if s.hasLen {
			s.fail(DuplicateLength)
			return false
		}
		s.hasLen, s.state, s.sub, s.n, s.length = true, sLength, 0, 0, 0
	case s.field == fCoding:
		if s.hasTE {
			s.fail(DuplicateTransferEncoding)
			return false
		}
		s.hasTE, s.state, s.sub, s.n = true, sCoding, 0, 0
	default:
		s.state = sValue
	}
	return true
}

// headEnd decides the body's framing once the head's empty line is read.
func (s *Scanner) headEnd() {
	s.heads++
	s.chunked, s.declared = s.hasTE, s.length
	switch {
	case s.hasTE && s.http10:
		s.fail(TransferEncodingInHTTP10)
	case s.hasTE && s.hasLen:
		s.fail(BothLengths)
	case s.hasTE:
		s.chunk, s.state, s.n, s.length, s.excess = true, sChunkSize, 0, 0, 0
	case s.length > 0:
		s.state = sBody
	default:
		s.done()
	}
}

// chunkLine accounts a chunk-size line the way Go's chunked reader does
// (with half its allowance) and moves to the data or the trailer.
func (s *Scanner) chunkLine(next int64) {
	s.excess += int64(s.n) + 2 - 16 - 2*s.length
	s.excess = max(s.excess, 0)
	if s.excess > maxExcess {
		s.fail(BadChunk)
		return
	}
	if s.length > 0 {
		s.state = sChunkData
		return
	}
	s.state, s.mark = sLineStart, next // the trailer
}

func (s *Scanner) done() {
	s.index++
	s.state, s.skip = sStart, 0
	if s.post {
		s.skip = postSkip
	}
}

// Byte classes.
const (
	cToken  = 1 << iota // RFC 9110 tchar
	cValue              // field-value and chunk-ext bytes: VCHAR, SP, HTAB, obs-text
	cTarget             // request-target bytes: VCHAR, obs-text
)

var class, unhex = func() (c [256]uint8, h [256]uint8) {
	for b := 0; b < 256; b++ {
		h[b] = 0xff
		switch {
		case b >= '0' && b <= '9':
			h[b] = uint8(b - '0')
		case b >= 'a' && b <= 'f':
			h[b] = uint8(b - 'a' + 10)
		case b >= 'A' && b <= 'F':
			h[b] = uint8(b - 'A' + 10)
		}
		if b >= 0x21 && b != 0x7f {
			c[b] |= cValue | cTarget
		}
		if b == ' ' || b == '\t' {
			c[b] |= cValue
		}
		if b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' {
			c[b] |= cToken
		}
	}
	for _, b := range []byte("!#$%&'*+-.^_`|~") {
		c[b] |= cToken
	}
	return c, h
}()
