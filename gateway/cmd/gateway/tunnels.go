package main

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
)

// catchUpTimeout bounds the Redis calls of a catch-up (off the request
// path: it may take longer than redis.timeout).
const catchUpTimeout = 5 * time.Second

// banNotices closes this gateway's tunnels for the bans and deny-list
// additions any gateway announces (wire.BanChannel): a ban closes its
// client's tunnels; a deny-list addition is loaded into the lists first
// (so this gateway refuses the network's requests at once, not at the
// next poll), then closes the tunnels it covers. After each subscription
// and each Redis recovery, catchUp closes what announcements were missed.
func banNotices(reg *tunnels.Registry, ls *lists.Store, bs *bans.Store, log *slog.Logger) tunnels.Notices {
	return tunnels.Notices{
		Ban: func(_ context.Context, id netip.Addr) {
			if n := reg.CloseID(id); n > 0 {
				log.Info("tunnels closed: client banned", "client", id, "closed", n)
			}
		},
		Deny: func(ctx context.Context, p netip.Prefix) {
			rctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
			if err := ls.Refresh(rctx); err != nil {
				log.Warn("lists not refreshed after a deny-list announcement", "err", err)
			}
			cancel()
			if n := reg.ClosePrefix(p); n > 0 {
				log.Info("tunnels closed: network deny-listed", "network", p, "closed", n)
			}
		},
		Resync: func(ctx context.Context) { catchUp(ctx, reg, ls, bs, log) },
	}
}

// catchUp closes the tunnels of clients banned or deny-listed now: what a
// gateway that was not subscribed (Redis unreachable) did not hear about.
// One read of the lists and one round trip for the bans of the clients
// with tunnels.
func catchUp(ctx context.Context, reg *tunnels.Registry, ls *lists.Store, bs *bans.Store, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	if err := ls.Refresh(ctx); err != nil {
		log.Warn("tunnel catch-up: lists not refreshed", "err", err)
	}
	n := reg.CloseDenied(func(a netip.Addr) bool { return ls.Match(a) == lists.Deny })
	banned, err := bs.Banned(ctx, reg.IDs())
	if err != nil {
		log.Warn("tunnel catch-up: bans not read", "err", err)
	}
	for _, id := range banned {
		n += reg.CloseID(id)
	}
	if n > 0 {
		log.Info("tunnels closed: clients banned or denied while announcements were missed", "closed", n)
	}
}
