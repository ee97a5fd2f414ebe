package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func reload(ctx context.Context, c *client, args []string) error {
	if _, err := flags(c, "reload", args, 0, "reload", nil); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, "/v1/admin/reload", nil, nil, func(b []byte) error {
		r, err := into[struct {
			RoutesCount int   `json:"routes_count"`
			RateLimit   int64 `json:"rate_limit"`
		}](b)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "Configuration reloaded: %d routes, rate limit %d requests per minute\n", r.RoutesCount, r.RateLimit)
		return err
	})
}

func routes(ctx context.Context, c *client, args []string) error {
	if _, err := flags(c, "routes", args, 0, "routes", nil); err != nil {
		return err
	}
	return c.call(ctx, http.MethodGet, "/v1/admin/routes", nil, nil, func(b []byte) error {
		rs, err := into[[]struct{ Path, Target string }](b)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tTARGET")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\n", r.Path, r.Target)
		}
		return tw.Flush()
	})
}

func config(ctx context.Context, c *client, args []string) error {
	if _, err := flags(c, "config", args, 0, "config", nil); err != nil {
		return err
	}
	return c.call(ctx, http.MethodGet, "/v1/admin/config", nil, nil, func(b []byte) error {
		v, err := into[any](b)
		if err != nil {
			return err
		}
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", out)
		return err
	})
}

func status(ctx context.Context, c *client, args []string) error {
	if _, err := flags(c, "status", args, 0, "status", nil); err != nil {
		return err
	}
	return c.call(ctx, http.MethodGet, "/v1/admin/status", nil, nil, func(b []byte) error {
		s, err := into[struct {
			Status      string `json:"status"`
			RoutesCount int    `json:"routes_count"`
			RateLimit   struct {
				RequestsPerMinute int64 `json:"requests_per_minute"`
				WindowSize        int   `json:"window_size"`
			} `json:"rate_limit"`
			Audit struct {
				TotalEntries     int64 `json:"total_entries"`
				RequestCount     int64 `json:"request_count"`
				AdminActionCount int64 `json:"admin_action_count"`
			} `json:"audit"`
		}](b)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "status:      %s\nroutes:      %d\nrate limit:  %d requests per %ds\naudit:       %d entries (%d requests, %d admin actions)\n",
			s.Status, s.RoutesCount, s.RateLimit.RequestsPerMinute, s.RateLimit.WindowSize,
			s.Audit.TotalEntries, s.Audit.RequestCount, s.Audit.AdminActionCount)
		return err
	})
}

func ratelimit(ctx context.Context, c *client, args []string) error {
	const want = "ratelimit stats|clear CLIENT"
	pos, err := flags(c, "ratelimit", args, 2, want, nil)
	if err != nil {
		return err
	}
	ip := pos[1]
	switch pos[0] {
	case "stats":
		return c.call(ctx, http.MethodGet, "/v1/admin/ratelimit/"+seg(ip), nil, nil, func(b []byte) error {
			s, err := into[struct {
				IP               string `json:"ip"`
				RequestsInWindow int64  `json:"requests_in_window"`
				Limit            int64  `json:"limit"`
				Remaining        int64  `json:"remaining"`
			}](b)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "%s: %d of %d requests in the window, %d remaining\n", s.IP, s.RequestsInWindow, s.Limit, s.Remaining)
			return err
		})
	case "clear":
		return c.call(ctx, http.MethodDelete, "/v1/admin/ratelimit/"+seg(ip), nil, nil, func(b []byte) error {
			s, err := into[struct {
				IP string `json:"ip"`
			}](b)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Rate limit cleared for %s\n", s.IP)
			return err
		})
	}
	return usagef("usage: %s", want)
}

func lists(ctx context.Context, c *client, args []string) error {
	const want = "lists allow|deny ls|add CIDR|remove CIDR"
	if len(args) < 2 {
		return usagef("usage: %s", want)
	}
	kind, verb := args[0], args[1]
	if kind != "allow" && kind != "deny" {
		return usagef("unknown list %q; usage: %s", kind, want)
	}
	path := "/v1/admin/lists/" + kind
	switch verb {
	case "ls", "list":
		if _, err := flags(c, "lists", args[2:], 0, want, nil); err != nil {
			return err
		}
		return c.call(ctx, http.MethodGet, path, nil, nil, func(b []byte) error {
			l, err := into[struct {
				Entries []struct {
					CIDR   string `json:"cidr"`
					Static bool   `json:"static"`
				} `json:"entries"`
			}](b)
			if err != nil {
				return err
			}
			if len(l.Entries) == 0 {
				_, err = fmt.Fprintf(c.stdout, "The %s list is empty\n", kind)
				return err
			}
			var lines []string
			for _, e := range l.Entries {
				line := e.CIDR
				if e.Static {
					line += "  (config file)"
				}
				lines = append(lines, line)
			}
			slices.Sort(lines)
			_, err = fmt.Fprintln(c.stdout, strings.Join(lines, "\n"))
			return err
		})
	case "add":
		pos, err := flags(c, "lists", args[2:], 1, want, nil)
		if err != nil {
			return err
		}
		return c.call(ctx, http.MethodPost, path, nil, map[string]string{"cidr": pos[0]}, func(b []byte) error {
			r, err := into[struct {
				CIDR string `json:"cidr"`
			}](b)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Added %s to the %s list\n", r.CIDR, kind)
			return err
		})
	case "remove", "rm":
		pos, err := flags(c, "lists", args[2:], 1, want, nil)
		if err != nil {
			return err
		}
		return c.call(ctx, http.MethodDelete, path, url.Values{"cidr": {pos[0]}}, nil, func([]byte) error {
			_, err := fmt.Fprintf(c.stdout, "Removed %s from the %s list\n", pos[0], kind)
			return err
		})
	}
	return usagef("usage: %s", want)
}

func bans(ctx context.Context, c *client, args []string) error {
	const want = "bans ls | bans add CLIENT [--ttl 24h] [--reason R] | bans rm CLIENT"
	if len(args) == 0 {
		return usagef("usage: %s", want)
	}
	switch args[0] {
	case "ls", "list":
		if _, err := flags(c, "bans", args[1:], 0, want, nil); err != nil {
			return err
		}
		return c.call(ctx, http.MethodGet, "/v1/admin/bans", nil, nil, func(b []byte) error {
			l, err := into[struct {
				Bans []struct {
					IP        string    `json:"ip"`
					Reason    string    `json:"reason"`
					ExpiresAt time.Time `json:"expires_at"`
				} `json:"bans"`
			}](b)
			if err != nil {
				return err
			}
			if len(l.Bans) == 0 {
				_, err = fmt.Fprintln(c.stdout, "No bans")
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IP\tEXPIRES\tREASON")
			for _, b := range l.Bans {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", b.IP, b.ExpiresAt.UTC().Format(time.RFC3339), b.Reason)
			}
			return tw.Flush()
		})
	case "add":
		var ttl time.Duration
		var reason string
		pos, err := flags(c, "bans add", args[1:], 1, want, func(fs *flag.FlagSet) {
			fs.DurationVar(&ttl, "ttl", 0, "ban length (server default when unset)")
			fs.StringVar(&reason, "reason", "", "why")
		})
		if err != nil {
			return err
		}
		body := map[string]string{"ip": pos[0]}
		if ttl != 0 {
			body["ttl"] = ttl.String()
		}
		if reason != "" {
			body["reason"] = reason
		}
		return c.call(ctx, http.MethodPost, "/v1/admin/bans", nil, body, func(b []byte) error {
			r, err := into[struct {
				IP        string    `json:"ip"`
				Reason    string    `json:"reason"`
				ExpiresAt time.Time `json:"expires_at"`
			}](b)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Banned %s until %s (%s)\n", r.IP, r.ExpiresAt.UTC().Format(time.RFC3339), r.Reason)
			return err
		})
	case "rm", "remove":
		pos, err := flags(c, "bans rm", args[1:], 1, want, nil)
		if err != nil {
			return err
		}
		return c.call(ctx, http.MethodDelete, "/v1/admin/bans/"+seg(pos[0]), nil, nil, func(b []byte) error {
			r, err := into[struct {
				IP string `json:"ip"`
			}](b)
			if err != nil {
				return err
			}
			// The client the ban was on: for IPv6 the /64 of the address given.
			_, err = fmt.Fprintf(c.stdout, "Unbanned %s\n", r.IP)
			return err
		})
	}
	return usagef("usage: %s", want)
}

func reset(ctx context.Context, c *client, args []string) error {
	const want = "reset login|password VALUE | reset ip CLIENT"
	pos, err := flags(c, "reset", args, 2, want, nil)
	if err != nil {
		return err
	}
	which := pos[0]
	if which != "login" && which != "password" && which != "ip" {
		return usagef("usage: %s", want)
	}
	return c.call(ctx, http.MethodPost, "/v1/admin/buckets/reset", nil, map[string]string{which: pos[1]}, func([]byte) error {
		_, err := fmt.Fprintf(c.stdout, "Reset the %s bucket\n", which)
		return err
	})
}

func keys(ctx context.Context, c *client, args []string) error {
	const want = "keys revoke ID"
	pos, err := flags(c, "keys", args, 2, want, nil)
	if err != nil {
		return err
	}
	if pos[0] != "revoke" {
		return usagef("usage: %s", want)
	}
	return c.call(ctx, http.MethodDelete, "/v1/admin/keys/"+seg(pos[1]), nil, nil, func([]byte) error {
		_, err := fmt.Fprintln(c.stdout, "Revoked key", pos[1])
		return err
	})
}

func audit(ctx context.Context, c *client, args []string) error {
	const want = "audit [--limit N] [--offset N] [--type T] [--ip IP] | audit stats"
	if len(args) > 0 && args[0] == "stats" {
		if _, err := flags(c, "audit stats", args[1:], 0, want, nil); err != nil {
			return err
		}
		return c.call(ctx, http.MethodGet, "/v1/admin/audit/stats", nil, nil, func(b []byte) error {
			s, err := into[struct {
				TotalEntries     int64 `json:"total_entries"`
				RequestCount     int64 `json:"request_count"`
				AdminActionCount int64 `json:"admin_action_count"`
			}](b)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "%d entries: %d requests, %d admin actions\n", s.TotalEntries, s.RequestCount, s.AdminActionCount)
			return err
		})
	}
	var limit, offset int
	var typ, ip string
	if _, err := flags(c, "audit", args, 0, want, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 0, "entries, 1 to 1000 (server default 100)")
		fs.IntVar(&offset, "offset", 0, "entries to skip")
		fs.StringVar(&typ, "type", "", "event type: request or admin_action")
		fs.StringVar(&ip, "ip", "", "client IP address, or an IPv6 /64")
	}); err != nil {
		return err
	}
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset != 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if typ != "" {
		q.Set("event_type", typ)
	}
	if ip != "" {
		q.Set("client_ip", ip)
	}
	return c.call(ctx, http.MethodGet, "/v1/admin/audit", q, nil, func(b []byte) error {
		es, err := into[[]struct {
			Timestamp  time.Time `json:"timestamp"`
			EventType  string    `json:"event_type"`
			ClientIP   string    `json:"client_ip"`
			Method     *string   `json:"method"`
			Path       *string   `json:"path"`
			StatusCode *int      `json:"status_code"`
			Action     *string   `json:"action"`
			Details    *string   `json:"details"`
		}](b)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tTYPE\tCLIENT\tMETHOD\tPATH\tSTATUS\tACTION\tDETAILS")
		for _, e := range es {
			status := "-"
			if e.StatusCode != nil {
				status = strconv.Itoa(*e.StatusCode)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Timestamp.UTC().Format(time.RFC3339), e.EventType, e.ClientIP,
				dash(e.Method), dash(e.Path), status, dash(e.Action), dash(e.Details))
		}
		return tw.Flush()
	})
}

func dash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

// seedAlias is one of seed 003's admin CLI commands: a POST of one JSON
// field to its admin route, printing "Successfully!".
type seedAlias struct {
	names       []string
	path, field string
	arg         string
}

var seedAliases = []seedAlias{
	{[]string{"reset_bucket_by_login", "rbl"}, "/admin/reset_bucket_by_login", "login", "LOGIN"},
	{[]string{"reset_bucket_by_password", "rbp"}, "/admin/reset_bucket_by_password", "password", "PASSWORD"},
	{[]string{"reset_bucket_by_ip", "rbi"}, "/admin/reset_bucket_by_ip", "ip", "IP"},
	{[]string{"add_in_whitelist", "aw"}, "/admin/add_in_whitelist", "ip_with_mask", "CIDR"},
	{[]string{"remove_from_whitelist", "rw"}, "/admin/remove_from_whitelist", "ip_with_mask", "CIDR"},
	{[]string{"add_in_blacklist", "ab"}, "/admin/add_in_blacklist", "ip_with_mask", "CIDR"},
	{[]string{"remove_from_blacklist", "rb"}, "/admin/remove_from_blacklist", "ip_with_mask", "CIDR"},
}

func (a seedAlias) run(ctx context.Context, c *client, args []string) error {
	pos, err := flags(c, a.names[0], args, 1, a.names[0]+" "+a.arg, nil)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, a.path, nil, map[string]string{a.field: pos[0]}, func([]byte) error {
		_, err := fmt.Fprintln(c.stdout, "Successfully!")
		return err
	})
}
