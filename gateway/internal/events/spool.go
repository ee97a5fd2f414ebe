package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// spool keeps events on disk while MongoDB is unreachable or slower than
// the events arrive, so neither costs events nor unbounded memory. It is a
// directory of append-only segment files of JSON lines (events-<n>.jsonl;
// events.jsonl, the single file of earlier versions, is the oldest).
// Appends go to the newest segment while the oldest is replayed, so a long
// replay never stops new events from being spooled. A crash between a
// replayed batch landing and its segment being removed only re-sends
// events, which their unique _id turns into no-ops.
type spool struct {
	dir      string
	maxBytes int64

	mu   sync.Mutex
	next int64 // the segment appends go to
	size int64 // bytes in every segment
}

const legacySpool = "events.jsonl"

func newSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("event spool: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	for _, sg := range segs {
		if st, err := os.Stat(s.path(sg)); err == nil {
			s.size += st.Size()
		}
		s.next = max(s.next, sg+1)
	}
	return s, nil
}

// path names segment n; -1 is the legacy file.
func (s *spool) path(n int64) string {
	if n < 0 {
		return filepath.Join(s.dir, legacySpool)
	}
	return filepath.Join(s.dir, fmt.Sprintf("events-%012d.jsonl", n))
}

// segments lists the segment numbers on disk, oldest first.
func (s *spool) segments() ([]int64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("event spool: %w", err)
	}
	var out []int64
	for _, e := range entries {
		name := e.Name()
		if name == legacySpool {
			out = append(out, -1)
			continue
		}
		num, ok := strings.CutPrefix(name, "events-")
		num, ok2 := strings.CutSuffix(num, ".jsonl")
		if n, err := strconv.ParseInt(num, 10, 64); ok && ok2 && err == nil && n >= 0 {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

var errSpoolFull = errors.New("event spool full")

// append writes evs after what is already spooled.
func (s *spool) append(evs []wire.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.size >= s.maxBytes {
		return errSpoolFull
	}
	f, err := os.OpenFile(s.path(s.next), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("event spool: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("event spool: %w", err)
		}
	}
	n, err := f.Write(buf.Bytes())
	s.size += int64(n)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// What was written may end in a torn line, which ends a segment
		// for replay: later appends go to a new one.
		s.next++
		return fmt.Errorf("event spool: %w", err)
	}
	return nil
}

// empty reports whether nothing is spooled.
func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size == 0
}

// replayOldest hands the oldest segment's events to send in batches of n
// and removes the segment once every batch was sent; found is false when
// nothing is spooled. On the first failure it keeps the segment (the sent
// batches are harmless to send again).
func (s *spool) replayOldest(n int, send func([]wire.Event) error) (sent int, found bool, err error) {
	s.mu.Lock()
	segs, err := s.segments()
	if err != nil || len(segs) == 0 {
		s.mu.Unlock()
		return 0, false, err
	}
	seg := segs[0]
	if seg >= s.next {
		s.next = seg + 1 // appends move on to a new segment
	}
	s.mu.Unlock()

	path := s.path(seg)
	f, err := os.Open(path)
	if err != nil {
		return 0, true, fmt.Errorf("event spool: %w", err)
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	dec := json.NewDecoder(bufio.NewReader(f))
	batch := make([]wire.Event, 0, n)
	for {
		var ev wire.Event
		err := dec.Decode(&ev)
		if err == nil {
			batch = append(batch, ev)
		}
		if len(batch) == n || (err != nil && len(batch) > 0) {
			if serr := send(batch); serr != nil {
				return sent, true, serr
			}
			sent += len(batch)
			batch = batch[:0]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A torn last line (a crash mid-write) ends the segment.
			break
		}
	}
	if err := os.Remove(path); err != nil {
		return sent, true, fmt.Errorf("event spool: %w", err)
	}
	s.mu.Lock()
	s.size = max(0, s.size-size)
	s.mu.Unlock()
	return sent, true, nil
}
