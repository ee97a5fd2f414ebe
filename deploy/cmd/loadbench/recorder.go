package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The scorer recorder stands between the gateway and the scorer
// (BULWARK_SCORER_URL points at it) and counts the gateway's scorer calls
// by client class. It is a TCP relay, not an HTTP proxy: each connection
// from the gateway gets one to the scorer and the bytes are copied as they
// come, both ways, so a call costs two more reads and writes and nothing is
// parsed. In the gateway-to-scorer bytes it looks for `{"ip":"`, which
// opens every wire.ScoreRequest body (ip is its first field; a batch's
// every element), and counts the address that follows by classOf. Profile
// reads and health checks pass through uncounted.

// ipMarker opens a score request's JSON body.
var ipMarker = []byte(`{"ip":"`)

// maxIPLen bounds the address after a marker (an IPv6 address with a zone
// is at most 45 + a short zone).
const maxIPLen = 64

// ipScanner finds the addresses after ipMarker in a byte stream that
// arrives in pieces of any size.
type ipScanner struct {
	carry []byte       // the end of the last piece: a marker or an address cut short
	found func([]byte) // called with each address
}

func (s *ipScanner) feed(p []byte) {
	data := p
	if len(s.carry) > 0 {
		s.carry = append(s.carry, p...)
		data = s.carry
	}
	var tail []byte
	for {
		i := bytes.Index(data, ipMarker)
		if i < 0 {
			tail = data[max(0, len(data)-(len(ipMarker)-1)):]
			break
		}
		rest := data[i+len(ipMarker):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			if len(rest) > maxIPLen {
				data = rest // not an address: look on
				continue
			}
			tail = data[i:]
			break
		}
		if j <= maxIPLen {
			s.found(rest[:j])
		}
		data = rest[j+1:]
	}
	s.carry = append(s.carry[:0], tail...) // may overlap: append copies like memmove
}

// callCounts counts scorer calls by class; safe for concurrent use.
type callCounts struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *callCounts) add(ip []byte) {
	class := classOf(string(ip))
	c.mu.Lock()
	c.n[class]++
	c.mu.Unlock()
}

func (c *callCounts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// relayConn copies c to a new connection to target and back, feeding what
// c sends to found.
func relayConn(c net.Conn, target string, found func([]byte)) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	back := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, s)
		_ = c.Close() // the scorer closed: so does the gateway's side
		close(back)
	}()
	sc := ipScanner{found: found}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			sc.feed(buf[:n])
			if _, werr := s.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = s.Close()
	<-back
}

// runRecorder relays -listen to the scorer and serves the counts on
// -control: GET /calls answers {"class": calls, ...} since the start.
func runRecorder(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("recorder", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "where the gateway calls the scorer")
	scorer := fs.String("scorer", "", "the scorer's base URL")
	control := fs.String("control", "127.0.0.1:0", "where GET /calls answers the counts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*scorer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-scorer %q: want http://host:port", *scorer)
	}
	counts := &callCounts{n: map[string]int64{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("recorder: listen: %w", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relayConn(c, u.Host, counts.add)
		}
	}()
	fmt.Fprintf(stdout, "recorder relaying %s to %s\n", ln.Addr(), u.Host)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(counts.snapshot())
	})
	err = serve(ctx, "recorder control", *control, mux, stdout)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// recorderCalls reads the recorder's counts.
func recorderCalls(ctx context.Context, rawURL string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	out := map[string]int64{}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
