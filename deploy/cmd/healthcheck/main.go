// Command healthcheck is the container health probe for Bulwark's images.
// The runtime images are distroless (no shell, no curl), so each one carries
// this small static binary at /healthcheck, and docker-compose.yml runs
//
//	/healthcheck http://127.0.0.1:PORT/healthz
//
// It sends one GET with a 2 s timeout and exits 0 when the answer is 2xx and
// 1 otherwise (including a usage error: Docker reserves exit code 2).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// timeout bounds the whole probe: connect, request and response headers.
const timeout = 2 * time.Second

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// errUsage is returned when the arguments are not exactly one http(s) URL.
var errUsage = errors.New("usage: healthcheck http://HOST:PORT/PATH")

// run probes the URL in args and returns nil when it answers 2xx.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: got %q", errUsage, args[0])
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "bulwark-healthcheck")

	// No proxy: a probe of the container's own port must never leave it,
	// whatever HTTP_PROXY the container was given.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("get %s: status %d", u.Redacted(), resp.StatusCode)
	}
	fmt.Fprintf(stdout, "healthcheck: %s: status %d\n", u.Redacted(), resp.StatusCode)
	return nil
}
