// Command bulwarkctl drives the gateway's admin API: reload and inspect the
// configuration, inspect and clear rate limits, edit the allow and deny
// lists, ban and unban clients, reset login limiter buckets, revoke API keys
// and read the audit log. It also answers to seed 003's admin CLI commands
// (reset_bucket_by_login/rbl, add_in_whitelist/aw, …).
//
// Output is human-readable by default and the server's raw JSON with
// --json. The exit status is 0 on success, 1 when the request fails (any
// HTTP status of 400 or more, or no connection) and 2 on a usage error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
