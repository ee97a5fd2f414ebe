package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const usage = `Usage: bulwarkctl [global flags] COMMAND [ARGS]

Commands:
  reload                                 validate and apply the config file
  routes                                 list the routes
  config                                 show the active config (secrets redacted)
  status                                 routes, rate limit and audit totals
  ratelimit stats CLIENT                 one client's proxy rate-limit window
  ratelimit clear CLIENT                 empty one client's window
  lists allow|deny ls                    list a list's CIDRs
  lists allow|deny add CIDR              add a CIDR (stored as its network)
  lists allow|deny remove CIDR           remove a CIDR
  bans ls                                list bans
  bans add CLIENT [--ttl 24h] [--reason R]
                                         ban a client
  bans rm CLIENT                         lift a client's ban
  reset login|password VALUE             reset a login limiter bucket
  reset ip CLIENT                        reset a client's login limiter bucket
  keys revoke ID                         revoke an API key
  audit [--limit N] [--offset N] [--type T] [--ip IP|/64]
                                         read the audit log, newest first (an
                                         address's rows, or a whole /64's)
  audit stats                            count the audit log

Seed 003 commands (print "Successfully!"):
  reset_bucket_by_login, rbl LOGIN       reset_bucket_by_password, rbp PASSWORD
  reset_bucket_by_ip, rbi IP
  add_in_whitelist, aw CIDR              remove_from_whitelist, rw CIDR
  add_in_blacklist, ab CIDR              remove_from_blacklist, rb CIDR

A CLIENT is an IPv4 address, or an IPv6 /64 named by any address in it
(2001:db8:1:2::77) or by itself (2001:db8:1:2::/64): the gateway counts,
bans and limits an IPv6 host by its /64, and answers with the /64.

Every command also takes --json, to print the server's JSON as is. Put "--"
before a value that starts with "-".

Exit status: 0 success, 1 request failed (HTTP status >= 400 or no
connection), 2 usage error.

Global flags:
`

// run is bulwarkctl with the OS passed in.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bulwarkctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", or(getenv("BULWARK_ADMIN_ADDR"), "http://127.0.0.1:9090"), "admin API address (env BULWARK_ADMIN_ADDR)")
	// Secrets are read from the environment after parsing, so that -h
	// never prints them as defaults.
	token := fs.String("token", "", "bearer token (env BULWARK_ADMIN_TOKEN, preferred: flags show in ps)")
	user := fs.String("user", "", "Basic auth user (env BULWARK_ADMIN_USER)")
	password := fs.String("password", "", "Basic auth password (env BULWARK_ADMIN_PASSWORD)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	c := &client{stdout: stdout}
	fs.BoolVar(&c.json, "json", false, "print the server's JSON as is")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}

	base, err := parseAddr(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "bulwarkctl: --addr:", err)
		return 2
	}
	c.base = base
	// Flags beat the environment; within each, the token beats Basic.
	switch {
	case *token != "":
		c.token = *token
	case *user != "" || *password != "":
		c.user, c.password = *user, *password
	default:
		c.token = getenv("BULWARK_ADMIN_TOKEN")
		c.user, c.password = getenv("BULWARK_ADMIN_USER"), getenv("BULWARK_ADMIN_PASSWORD")
	}
	c.haveCredentials = c.token != "" || c.user != "" || c.password != ""
	c.hc = &http.Client{Timeout: *timeout}

	cmd, ok := commands()[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "bulwarkctl: unknown command %q\n", rest[0])
		fs.Usage()
		return 2
	}
	err = cmd(ctx, c, rest[1:])
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "bulwarkctl %s: %s\n", rest[0], ue.msg)
		return 2
	default:
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// parseAddr accepts http(s)://host:port[/prefix] or a bare host:port.
func parseAddr(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want http(s)://host:port, got %q", s)
	}
	return u, nil
}

// command runs one subcommand with the arguments after its name.
type command func(ctx context.Context, c *client, args []string) error

func commands() map[string]command {
	cmds := map[string]command{
		"reload":    reload,
		"routes":    routes,
		"config":    config,
		"status":    status,
		"ratelimit": ratelimit,
		"lists":     lists,
		"bans":      bans,
		"reset":     reset,
		"keys":      keys,
		"audit":     audit,
	}
	for _, a := range seedAliases {
		for _, name := range a.names {
			cmds[name] = a.run
		}
	}
	return cmds
}

// flags parses a subcommand's flags, which may sit before, between or
// after its positional arguments; everything after "--" is positional. It
// checks the number of positional arguments against want (a usage line).
func flags(c *client, name string, args []string, n int, want string, define func(fs *flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&c.json, "json", c.json, "print the server's JSON as is")
	if define != nil {
		define(fs)
	}
	var pos, tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usagef("usage: %s", want)
			}
			return nil, usagef("%v; usage: %s", err, want)
		}
		if args = fs.Args(); len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	pos = append(pos, tail...)
	if len(pos) != n {
		return nil, usagef("usage: %s", want)
	}
	return pos, nil
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
