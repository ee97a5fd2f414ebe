package jwtauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"
)

// fileStamp is what Run compares to tell that the JWKS file changed: its
// modification time, size and content hash, or the error reading it.
type fileStamp struct {
	modTime int64 // Unix nanoseconds
	size    int64
	sum     [sha256.Size]byte
	err     string
}

func readStamped(path string) ([]byte, fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fileStamp{err: err.Error()}, err
	}
	data, err := readJWKSFile(path)
	if err != nil {
		return nil, fileStamp{err: err.Error()}, err
	}
	return data, fileStamp{modTime: st.ModTime().UnixNano(), size: st.Size(), sum: sha256.Sum256(data)}, nil
}

// Reload reads the JWKS file again. An unreadable or invalid file keeps
// the keys in use and returns an error naming the file and the reason.
// Without a JWKS file it does nothing.
func (v *Verifier) Reload() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, err := v.reloadLocked(true)
	return err
}

// reloadLocked re-reads the file; unless force it does so only when the
// file's stamp differs from the last one seen. It reports whether it
// looked at a changed file.
func (v *Verifier) reloadLocked(force bool) (bool, error) {
	s := v.state.Load()
	path := s.opts.JWKSFile
	if path == "" {
		return false, nil
	}
	data, stamp, err := readStamped(path)
	if !force && stamp == v.seen {
		return false, nil
	}
	v.seen = stamp
	if err != nil {
		return true, fmt.Errorf("jwks file: %w", err)
	}
	keys, err := parseJWKS(path, data)
	if err != nil {
		return true, fmt.Errorf("jwks file: %w", err)
	}
	next, err := newState(s.opts, keys)
	if err != nil {
		return true, fmt.Errorf("jwks file %s: %w", path, err)
	}
	v.state.Store(next)
	return true, nil
}

// Run polls the JWKS file every interval and reloads it when its
// modification time, size or content changed, logging each reload and
// each failure once (the old keys stay in use). It returns nil when ctx
// ends.
func (v *Verifier) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return errors.New("jwtauth: reload interval must be positive")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			v.poll()
		}
	}
}

func (v *Verifier) poll() {
	v.mu.Lock()
	changed, err := v.reloadLocked(false)
	path, keys := v.state.Load().opts.JWKSFile, v.Keys()
	v.mu.Unlock()
	switch {
	case err != nil:
		v.log.Warn("jwks reload failed; the old keys stay in use", "file", path, "err", err)
	case changed:
		v.log.Info("jwks reloaded", "file", path, "keys", keys)
	}
}
