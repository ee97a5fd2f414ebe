// Command dashboard serves Bulwark's live view: it aggregates what the
// gateways publish to Redis into one stats frame per second, pushes it to
// every connected browser over a websocket, answers event-history queries
// from MongoDB, and serves the embedded UI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/hub"
	"github.com/bulwarkgw/bulwark/dashboard/internal/live"
	"github.com/bulwarkgw/bulwark/dashboard/internal/server"
	"github.com/bulwarkgw/bulwark/dashboard/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/redisconn"
	"github.com/bulwarkgw/bulwark/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

type settings struct {
	listen, redisURL, prefix, mongoURI, mongoDB string
	cost                                        float64
	adminToken, user, password, id              string
	origins                                     []string
}

func load(args []string, getenv func(string) string) (settings, error) {
	or := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	s := settings{
		listen:   or("BULWARK_LISTEN", ":8082"),
		redisURL: or("BULWARK_REDIS_URL", "redis://127.0.0.1:6379/0"),
		prefix:   or("BULWARK_REDIS_PREFIX", "bw:"),
		mongoURI: or("BULWARK_MONGO_URI", "mongodb://127.0.0.1:27017"),
		mongoDB:  or("BULWARK_MONGO_DB", "bulwark"),
	}
	host, _ := os.Hostname()
	s.id = or("BULWARK_DASHBOARD_ID", "dashboard-"+host)
	s.adminToken = getenv("BULWARK_DASHBOARD_ADMIN_TOKEN")
	s.user, s.password = getenv("BULWARK_DASHBOARD_USER"), getenv("BULWARK_DASHBOARD_PASSWORD")
	for _, o := range strings.Split(getenv("BULWARK_DASHBOARD_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.origins = append(s.origins, o)
		}
	}
	costStr := or("BULWARK_COST_PER_REQUEST", "0.45")
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.StringVar(&s.listen, "listen", s.listen, "listen address (env BULWARK_LISTEN)")
	if err := fs.Parse(args[1:]); err != nil {
		return s, err
	}
	var errs []error
	cost, err := strconv.ParseFloat(costStr, 64)
	if err != nil || cost < 0 {
		errs = append(errs, fmt.Errorf("BULWARK_COST_PER_REQUEST: must be a non-negative number, got %q", costStr))
	}
	s.cost = cost
	if s.prefix == "" {
		errs = append(errs, errors.New("BULWARK_REDIS_PREFIX: must not be empty"))
	}
	if (s.user == "") != (s.password == "") {
		errs = append(errs, errors.New("BULWARK_DASHBOARD_USER, BULWARK_DASHBOARD_PASSWORD: set both for a login, or neither"))
	}
	if s.adminToken != "" && len(s.adminToken) < 16 {
		errs = append(errs, errors.New("BULWARK_DASHBOARD_ADMIN_TOKEN: must be at least 16 characters"))
	}
	for _, o := range s.origins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("BULWARK_DASHBOARD_ORIGINS: %q is not an origin like https://host:port", o))
		}
	}
	if _, err := redisconn.Options(s.redisURL); err != nil {
		errs = append(errs, fmt.Errorf("BULWARK_REDIS_URL: %w", err))
	}
	return s, errors.Join(errs...)
}

// banRefresh is how often the active bans are listed.
const banRefresh = 3 * time.Second

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	s, err := load(args, getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "dashboard")

	// One node, a Redis Cluster (addr=) or Sentinel (master_name=).
	ropt, _ := redisconn.Options(s.redisURL)
	ropt.DialTimeout, ropt.ReadTimeout, ropt.WriteTimeout = time.Second, 3*time.Second, time.Second
	rdb := redisconn.New(ropt)
	defer rdb.Close()
	mc, err := mongo.Connect(options.Client().ApplyURI(s.mongoURI).SetServerSelectionTimeout(3 * time.Second))
	if err != nil {
		return fmt.Errorf("BULWARK_MONGO_URI: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mc.Disconnect(dctx)
	}()
	coll := mc.Database(s.mongoDB).Collection("events")
	store, err := history.New(coll)
	if err != nil {
		return err
	}
	clients, err := traffic.New(rdb, s.prefix, coll, s.id)
	if err != nil {
		return err
	}
	agg, err := live.New(rdb, live.Options{Prefix: s.prefix, CostPerRequest: s.cost}, log)
	if err != nil {
		return err
	}
	h := hub.New(log)

	// The frame a joining browser gets, encoded once per tick.
	var snapshot atomic.Pointer[[]byte]
	empty := []byte(`{"ts":0,"totals":{},"series":[],"events":[],"top_offenders":[],"cost_saved":0}`)
	snapshot.Store(&empty)

	e, err := server.New(server.Deps{
		Hub: h, Events: store, Summaries: store, Clients: clients, UI: web.FS(), Log: log,
		Snapshot:       func() []byte { return *snapshot.Load() },
		AllowedOrigins: s.origins, AdminToken: s.adminToken, User: s.user, Password: s.password,
		Unbanned: agg.DropBan,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler: e, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Websockets are hijacked: Shutdown does not wait for them, the hub
	// closes them.
	srv.RegisterOnShutdown(h.Close)
	log.Info("listening", "addr", ln.Addr().String(), "ui_built", web.Built(),
		"read_only", s.adminToken == "", "login", s.user != "")

	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := agg.Load(lctx, time.Now()); err != nil {
		log.Warn("live history not loaded", "err", err)
	}
	cancel()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return agg.Follow(gctx) })
	g.Go(func() error {
		// Bans are listed from the gateways' ban index, a cost that does
		// not grow with the clients Redis tracks; every few seconds is
		// enough, frames count the time left down in between.
		refresh := func() {
			bctx, cancel := context.WithTimeout(gctx, 2*time.Second)
			defer cancel()
			now := time.Now()
			bans, err := clients.List(bctx, now)
			if err != nil {
				log.Warn("bans not listed", "err", err)
				return
			}
			agg.SetBans(bans, now)
		}
		refresh()
		t := time.NewTicker(banRefresh)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				refresh()
			}
		}
	})
	g.Go(func() error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case now := <-t.C:
				tctx, cancel := context.WithTimeout(gctx, 900*time.Millisecond)
				delta, full, err := agg.Tick(tctx, now)
				cancel()
				if err != nil {
					log.Warn("stats tick failed", "err", err)
					continue
				}
				if b, err := json.Marshal(full); err == nil {
					snapshot.Store(&b)
				}
				if b, err := json.Marshal(delta); err == nil {
					h.Broadcast(b)
				}
			}
		}
	})
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}
