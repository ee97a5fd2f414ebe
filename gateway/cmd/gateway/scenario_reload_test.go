package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hot reload has three doors (admin API, SIGHUP, a changed file) and one
// mechanism; S20 covers the admin API, this covers the other two.
func TestReloadOnFileChangeAndSIGHUP(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.85")
	require.Equal(t, http.StatusNotFound, c.get("/new/x").Code)

	s.write(strings.Replace(proxyConfig, "routes:\n", "routes:\n  - {path: /new/, upstream: \"{{U3}}\"}\n", 1))
	assert.Eventually(t, func() bool { return c.get("/new/x").Code == http.StatusOK }, 10*time.Second, 100*time.Millisecond,
		"a changed file is picked up")

	// A broken file is refused; the gateway keeps serving the last good one.
	s.write("routes: [{path: nope}]\n")
	time.Sleep(2500 * time.Millisecond)
	assert.Equal(t, http.StatusOK, c.get("/new/x").Code)

	s.write(strings.Replace(proxyConfig, "routes:\n", "routes:\n  - {path: /hup/, upstream: \"{{U3}}\"}\n", 1))
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP))
	assert.Eventually(t, func() bool { return c.get("/hup/x").Code == http.StatusOK }, 10*time.Second, 50*time.Millisecond,
		"SIGHUP reloads")
	assert.Equal(t, http.StatusNotFound, c.get("/new/x").Code)
}
