package main

import (
	"net/http"
	"os"
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

	// For SIGHUP alone to be the trigger, the file keeps its size and its
	// modification time, which is all the poller looks at.
	good := strings.Replace(proxyConfig, "routes:\n", "routes:\n  - {path: /mid/, upstream: \"{{U3}}\"}\n", 1)
	s.write(good)
	require.Eventually(t, func() bool { return c.get("/mid/x").Code == http.StatusOK }, 10*time.Second, 100*time.Millisecond)
	st, err := os.Stat(s.cfgPath)
	require.NoError(t, err)
	s.write(strings.Replace(good, "/mid/", "/hup/", 1))
	require.NoError(t, os.Chtimes(s.cfgPath, st.ModTime(), st.ModTime()))
	time.Sleep(2500 * time.Millisecond) // a poll passes: nothing changes
	require.Equal(t, http.StatusNotFound, c.get("/hup/x").Code, "the poller saw no change")
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP))
	assert.Eventually(t, func() bool { return c.get("/hup/x").Code == http.StatusOK }, 10*time.Second, 50*time.Millisecond,
		"SIGHUP reloads")
	assert.Equal(t, http.StatusNotFound, c.get("/mid/x").Code)
}
