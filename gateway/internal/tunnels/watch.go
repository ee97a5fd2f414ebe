package tunnels

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Notices is what Watch does with what it hears.
type Notices struct {
	Ban  func(ctx context.Context, id netip.Addr)  // a client was banned somewhere
	Deny func(ctx context.Context, p netip.Prefix) // a network was added to the deny list somewhere
	// Resync runs after each subscription, the first included: what was
	// announced while the subscriber was away is not delivered again, so
	// it looks at what is in force now. Nil: nothing.
	Resync func(ctx context.Context)
}

// How Watch keeps its subscription: a connection that has said nothing
// for health is pinged, and one that does not answer within another
// health is dropped for a new one, so a subscription on a connection that
// died silently (a frozen server, a cut network) is renewed within two of
// them. Failed attempts are retried after a backoff that doubles up to
// maxBackoff.
const (
	health     = 5 * time.Second
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Watch subscribes to channel (wire.BanChannel) on rdb and hands each
// wire.BanNotice to n until ctx ends, resubscribing by itself after an
// outage. It returns nil when ctx ends.
func Watch(ctx context.Context, rdb redis.UniversalClient, channel string, n Notices, log *slog.Logger) error {
	if rdb == nil || channel == "" || n.Ban == nil || n.Deny == nil || log == nil {
		return errors.New("tunnels: watch: nil client, handler or logger, or no channel")
	}
	backoff := minBackoff
	lost := false // logged once per outage
	for ctx.Err() == nil {
		subscribed, err := watchOnce(ctx, rdb, channel, n, log)
		if ctx.Err() != nil {
			return nil
		}
		if subscribed {
			backoff, lost = minBackoff, false
		}
		if !lost {
			log.Warn("ban announcements: subscription lost; resubscribing (tunnels of clients banned meanwhile are closed once it is back)", "err", err)
			lost = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// watchOnce runs one subscription until it fails; subscribed reports
// whether Redis confirmed it.
func watchOnce(ctx context.Context, rdb redis.UniversalClient, channel string, n Notices, log *slog.Logger) (subscribed bool, err error) {
	ps := rdb.Subscribe(ctx, channel) // connects lazily when it cannot now
	defer ps.Close()
	// A read waits for the next message without regard to ctx: closing
	// the subscription ends it.
	defer context.AfterFunc(ctx, func() { _ = ps.Close() })()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, health)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return subscribed, err
				}
				pinged = true
				continue
			}
			return subscribed, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed = true
				log.Info("ban announcements: subscribed", "channel", channel)
				if n.Resync != nil {
					n.Resync(ctx)
				}
			}
		case *redis.Message:
			handle(ctx, m.Payload, n, log)
		}
	}
}

// handle decodes one notice and hands it on.
func handle(ctx context.Context, payload string, n Notices, log *slog.Logger) {
	var bn wire.BanNotice
	if err := json.Unmarshal([]byte(payload), &bn); err != nil {
		log.Warn("ban announcements: unreadable notice", "err", err)
		return
	}
	if bn.Ban != "" {
		if id, err := netip.ParseAddr(bn.Ban); err == nil {
			n.Ban(ctx, id)
		} else {
			log.Warn("ban announcements: bad id", "ban", bn.Ban)
		}
	}
	if bn.Deny != "" {
		if p, err := netip.ParsePrefix(bn.Deny); err == nil {
			n.Deny(ctx, p)
		} else {
			log.Warn("ban announcements: bad network", "deny", bn.Deny)
		}
	}
}
