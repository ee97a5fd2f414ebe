package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// ferretServer is an embedded FerretDB instance with the SQLite handler.
type ferretServer struct {
	uri     string
	dataDir string
	tempDir bool // dataDir is ours and is removed by stop

	cancel context.CancelFunc
	done   chan error // receives Run's result; nil once collected
}

// startFerret starts FerretDB on 127.0.0.1:port (a free port if 0) with its
// SQLite data in dir/ferretdb/ (kept) or, if dir is empty, in a temporary
// directory (removed by stop), and waits until it accepts connections.
func startFerret(ctx context.Context, dir string, port int, logger *slog.Logger) (*ferretServer, error) {
	fs := &ferretServer{}

	var err error
	if dir == "" {
		if fs.dataDir, err = os.MkdirTemp("", "devstack-ferretdb-*"); err != nil {
			return nil, fmt.Errorf("creating temp dir: %w", err)
		}
		fs.tempDir = true
	} else {
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		fs.dataDir = filepath.Join(dir, "ferretdb")
		if err = os.MkdirAll(fs.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating data dir: %w", err)
		}
	}

	// FerretDB wants a file: URI naming an existing directory, ending in '/'.
	sqliteURL := (&url.URL{Scheme: "file", Path: fs.dataDir + "/"}).String()

	// New already binds the listener, so with port 0 the real port is known
	// right after it returns.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: net.JoinHostPort(loopback, strconv.Itoa(port))},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		fs.removeTemp()
		return nil, fmt.Errorf("creating FerretDB (sqlite %s): %w", sqliteURL, err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	fs.cancel = cancel
	fs.done = make(chan error, 1)
	go func() { fs.done <- f.Run(runCtx) }()

	fs.uri = f.MongoDBURI()
	u, err := url.Parse(fs.uri)
	if err == nil && u.Host == "" {
		err = errors.New("no host")
	}
	if err == nil {
		err = waitDial(ctx, u.Host)
	} else {
		err = fmt.Errorf("unexpected MongoDB URI %q: %w", fs.uri, err)
	}
	if err != nil {
		if stopErr := fs.stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", stopErr))
		}
		return nil, err
	}
	return fs, nil
}

// stop cancels Run, waits for it, and removes a temporary data directory.
func (fs *ferretServer) stop() error {
	var errs []error

	fs.cancel()
	if fs.done != nil {
		// Run gives open client connections 3 s to go away.
		select {
		case err := <-fs.done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-time.After(15 * time.Second):
			errs = append(errs, errors.New("timed out waiting for FerretDB to stop"))
		}
		fs.done = nil
	}

	if err := fs.removeTemp(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (fs *ferretServer) removeTemp() error {
	if !fs.tempDir {
		return nil
	}
	if err := os.RemoveAll(fs.dataDir); err != nil {
		return fmt.Errorf("removing %s: %w", fs.dataDir, err)
	}
	return nil
}

// newFerretLogger returns FerretDB's logger. At WARN and above it drops
// records that are noise for a dev stack: FerretDB dumps every failed
// command (ok: 0, e.g. the "endSessions" every driver sends on Disconnect) as
// two WARN records, and races with itself on client disconnects, logging a
// spurious "Failed to set deadline ... use of closed network connection".
func newFerretLogger(w io.Writer, level slog.Level) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	if level >= slog.LevelWarn {
		h = quietHandler{h}
	}
	return slog.New(lazyHandler{base: h}).With(slog.String("component", "ferretdb"))
}

type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		switch {
		case strings.HasPrefix(r.Message, "Response header: "),
			strings.HasPrefix(r.Message, "Response message:"),
			strings.HasPrefix(r.Message, "Failed to set deadline: ") &&
				strings.HasSuffix(r.Message, net.ErrClosed.Error()):
			return nil
		}
	}
	if err := h.Handler.Handle(ctx, r); err != nil {
		return fmt.Errorf("ferretdb log: %w", err)
	}
	return nil
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}

// lazyHandler defers WithAttrs and WithGroup until a record is actually
// handled. FerretDB calls Logger.With with every SQL query and its arguments
// (whole documents) before a Debug call that is almost always disabled; the
// text handler would format those attributes eagerly, which cost a fifth of
// FerretDB's CPU on inserts.
type lazyHandler struct {
	base slog.Handler
	ops  []func(slog.Handler) slog.Handler // applied in order, on Handle
}

func (h lazyHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.base.Enabled(ctx, l) }

func (h lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	t := h.base
	for _, op := range h.ops {
		t = op(t)
	}
	return t.Handle(ctx, r)
}

func (h lazyHandler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	return lazyHandler{base: h.base, ops: append(h.ops[:len(h.ops):len(h.ops)], op)}
}

func (h lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(t slog.Handler) slog.Handler { return t.WithAttrs(attrs) })
}

func (h lazyHandler) WithGroup(name string) slog.Handler {
	return h.with(func(t slog.Handler) slog.Handler { return t.WithGroup(name) })
}

// waitDial polls until a TCP connection to addr succeeds.
func waitDial(ctx context.Context, addr string) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	d := net.Dialer{Timeout: time.Second}
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			if err = conn.Close(); err != nil {
				return fmt.Errorf("closing probe connection to %s: %w", addr, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not accepting connections: %w (last error: %v)", addr, ctx.Err(), err)
		case <-t.C:
		}
	}
}
