package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/broken":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	// A listener that was opened and closed again: nothing answers there.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"200 is healthy", []string{srv.URL + "/healthz"}, false},
		{"204 is healthy", []string{srv.URL + "/nocontent"}, false},
		{"503 is unhealthy", []string{srv.URL + "/broken"}, true},
		{"404 is unhealthy", []string{srv.URL + "/missing"}, true},
		{"connection refused", []string{deadURL + "/healthz"}, true},
		{"no argument", nil, true},
		{"two arguments", []string{srv.URL, srv.URL}, true},
		{"not a URL", []string{"127.0.0.1:8080/healthz"}, true},
		{"unsupported scheme", []string{"ftp://127.0.0.1/healthz"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, &out)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			assert.NoError(t, err)
			assert.Contains(t, out.String(), "status 2")
		})
	}
}

func TestRunUsageError(t *testing.T) {
	err := run(context.Background(), nil, &bytes.Buffer{})
	assert.ErrorIs(t, err, errUsage)
}

// TestRunGivesUpOnSlowServer checks that a server which never answers does
// not hang the probe. The parent context stands in for the 2 s timeout,
// which is applied the same way, so the test does not wait 2 s.
func TestRunGivesUpOnSlowServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{srv.URL + "/healthz"}, &bytes.Buffer{}) }()

	select {
	case err := <-done:
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(timeout + time.Second):
		t.Fatal("run did not give up on a server that never answers")
	}
}
