package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// spool keeps events on disk while MongoDB is unreachable, so an outage
// costs no events and no unbounded memory. It is one append-only file of
// JSON lines; a replay reads it whole, oldest first. A crash between a
// replayed batch landing and the file being removed only re-sends events,
// which their unique _id turns into no-ops.
type spool struct {
	path     string
	maxBytes int64

	mu sync.Mutex
}

func newSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("event spool: %w", err)
	}
	return &spool{path: filepath.Join(dir, "events.jsonl"), maxBytes: maxBytes}, nil
}

var errSpoolFull = errors.New("event spool full")

// append writes evs after what is already spooled.
func (s *spool) append(evs []wire.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("event spool: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() >= s.maxBytes {
		return errSpoolFull
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("event spool: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("event spool: %w", err)
	}
	return f.Sync()
}

// empty reports whether nothing is spooled.
func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := os.Stat(s.path)
	return err != nil || st.Size() == 0
}

// replay hands the spooled events to send in batches of n, oldest first,
// and removes the file once every batch was sent. On the first failure it
// keeps the file (the sent batches are harmless to send again).
func (s *spool) replay(n int, send func([]wire.Event) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("event spool: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	sent := 0
	batch := make([]wire.Event, 0, n)
	for {
		var ev wire.Event
		err := dec.Decode(&ev)
		if err == nil {
			batch = append(batch, ev)
		}
		if len(batch) == n || (err != nil && len(batch) > 0) {
			if serr := send(batch); serr != nil {
				return sent, serr
			}
			sent += len(batch)
			batch = batch[:0]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A torn last line (a crash mid-write) ends the file.
			break
		}
	}
	return sent, os.Remove(s.path)
}
