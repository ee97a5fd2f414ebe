// Command gateway is Bulwark's reverse proxy: it counts each client's traffic
// in Redis, asks the scorer for a threat score, blocks, bans or throttles
// abusive clients, forwards everyone else to the upstream, and records every
// security event in MongoDB and on the live stream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/gateway/internal/audit"
	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/bruteforce"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/connlimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/events"
	"github.com/bulwarkgw/bulwark/gateway/internal/framing"
	"github.com/bulwarkgw/bulwark/gateway/internal/jwtauth"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/localscore"
	"github.com/bulwarkgw/bulwark/gateway/internal/logbuf"
	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/redisbreaker"
	"github.com/bulwarkgw/bulwark/gateway/internal/scorecache"
	"github.com/bulwarkgw/bulwark/gateway/internal/scoreclient"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/redisconn"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	cfgPath := fs.String("config", getenv(config.EnvConfig), "YAML config file (env "+config.EnvConfig+")")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, getenv)
	if err != nil {
		return err
	}
	// Log lines are buffered and written by one goroutine: a request never
	// waits for stdout (package logbuf).
	logOut := logbuf.New(stdout, 8<<20)
	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	logDone := make(chan struct{})
	go func() { _ = logOut.Run(logCtx, 100*time.Millisecond); close(logDone) }()
	defer func() { stopLog(); <-logDone }()
	log := slog.New(slog.NewJSONHandler(logOut, nil)).With("service", "gateway", "gateway", cfg.GatewayID)

	// One node, a Redis Cluster (addr=) or Sentinel (master_name=).
	ropt, err := redisconn.Options(cfg.Redis.URL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	ropt.DialTimeout = time.Second
	ropt.ReadTimeout = cfg.Redis.Timeout
	ropt.WriteTimeout = cfg.Redis.Timeout
	ropt.MaxRetries = -1   // no retries on the hot path: fail fast, degrade as configured
	ropt.DialerRetries = 1 // one dial per call: the breaker decides when to try again
	rdb := redisconn.New(ropt)
	defer rdb.Close()
	// Every Redis user shares one circuit breaker: after a first timeout or
	// refused connection calls fail at once until a probe answers.
	breaker, err := redisbreaker.New(log)
	if err != nil {
		return err
	}
	rdb.AddHook(breaker)

	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.Mongo.URI).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return fmt.Errorf("mongo.uri: %w", err)
	}
	defer func() {
		// The last share of the shutdown bound: with MongoDB down the
		// driver would wait to end its sessions.
		dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout*disconnectShare/10)
		defer cancel()
		_ = mc.Disconnect(dctx)
	}()
	coll := mongoCollection(mc, cfg.Mongo, "events")

	store, err := traffic.New(rdb, cfg.Redis.Prefix)
	if err != nil {
		return err
	}
	client, err := scoreclient.New(cfg.Scorer.URL, cfg.Scorer.Timeout)
	if err != nil {
		return err
	}
	// The scorer's own rules, in the gateway: the fast path's bound and the
	// fallback score.
	local, err := localscore.New(client.RawProfile, log)
	if err != nil {
		return err
	}
	// The gateway enforces its own thresholds; say so when the scorer's
	// profile levels clients at others (read with the profile, not again).
	local.OnLoad(func(p rules.Config) {
		if p.Block != cfg.BlockAt || p.Throttle != cfg.ThrottleAt {
			log.Warn("scorer profile thresholds differ from the gateway's; the gateway's apply",
				"profile", p.Name, "profile_block", p.Block, "profile_throttle", p.Throttle,
				"block", cfg.BlockAt, "throttle", cfg.ThrottleAt)
		}
	})
	go func() { _ = local.Run(ctx, localscore.SyncInterval) }()
	// A client's score is reused briefly while its counts hold steady.
	scorer, err := scorecache.New(client, cfg.Scoring.CacheTTL, cfg.Scoring.CacheTolerance, time.Now)
	if err != nil {
		return err
	}
	sink, err := events.NewSink(coll, rdb, cfg.Redis.Prefix, events.Options{
		QueueSize: cfg.Events.QueueSize, BatchSize: cfg.Events.BatchSize,
		FlushInterval: cfg.Events.FlushInterval, StreamMaxLen: cfg.Events.StreamMaxLen,
		SpoolDir: cfg.Events.SpoolDir, SpoolMaxBytes: cfg.Events.SpoolMaxBytes,
		AggregateWindow: cfg.Events.AggregateWindow,
		StopTimeout:     cfg.ShutdownTimeout * flushShare / 10,
	}, log)
	if err != nil {
		return err
	}
	counter, err := stats.New(rdb, cfg.Redis.Prefix, log)
	if err != nil {
		return err
	}
	listStore, err := lists.New(rdb, cfg.Redis.Prefix, lists.Static{Allow: cfg.Lists.Allow, Deny: cfg.Lists.Deny}, log)
	if err != nil {
		return fmt.Errorf("lists: %w", err)
	}
	banStore, err := bans.New(rdb, cfg.Redis.Prefix)
	if err != nil {
		return err
	}
	// While the breaker is open (fail_mode open) each gateway counts,
	// scores and bans on its own; once Redis is back the bans it made are
	// written there and the states it kept are dropped.
	fallback, err := traffic.NewMemory(cfg.Redis.FallbackClients)
	if err != nil {
		return fmt.Errorf("redis.fallback_clients: %w", err)
	}
	breaker.OnClose(func(ctx context.Context) {
		n, err := fallback.Replay(ctx, banStore.Ban, time.Now())
		if err != nil {
			log.Warn("local bans not all written to redis; kept for the next recovery", "written", n, "held", fallback.Bans(), "err", err)
		} else if n > 0 {
			log.Info("local bans written to redis", "written", n)
		}
		fallback.Forget()
	})
	// Open WebSocket tunnels, closed when their client is banned or
	// deny-listed: by this gateway at once, by the others through the
	// announcements on wire.BanChannel (watched below); after an outage,
	// what was missed is caught up.
	tunnelReg := tunnels.New(time.Now)
	notices := banNotices(tunnelReg, listStore, banStore, log)
	breaker.OnClose(notices.Resync)
	limiter, err := ratelimit.New(rdb, cfg.Redis.Prefix)
	if err != nil {
		return err
	}
	keys, err := apikey.New(rdb, cfg.Redis.Prefix, cfg.APIKey.KeyTTL)
	if err != nil {
		return err
	}
	// Bearer JWTs (the jwt section), checked against the inline keys and a
	// JWKS file that jwtv.Run re-reads. Off, the dependency stays a nil
	// interface, not a nil *Verifier.
	var jwtv *jwtauth.Verifier
	var jwtDep server.JWTVerifier
	if cfg.JWT.Enabled() {
		if jwtv, err = jwtauth.New(jwtOptions(cfg.JWT), log); err != nil {
			return err
		}
		jwtDep = jwtv
		log.Info("jwt verification", "keys", jwtv.Keys(), "jwks_file", cfg.JWT.JWKSFile, "principal_claim", cfg.JWT.PrincipalClaim)
	}
	guard, err := bruteforce.New(rdb, cfg.Redis.Prefix, guardConfig(cfg))
	if err != nil {
		return fmt.Errorf("login_protection: %w", err)
	}
	auditColl := mongoCollection(mc, cfg.Mongo, "audit")
	auditLog, err := audit.New(auditColl, cfg.Events.QueueSize, log)
	if err != nil {
		return err
	}
	auditLog.SetStopTimeout(cfg.ShutdownTimeout * flushShare / 10)
	metrics := server.NewMetrics()
	metrics.CounterFunc("bulwark_gateway_events_written_total", "Events written to MongoDB.", count(sink.Written))
	metrics.CounterFunc("bulwark_gateway_events_dropped_total", "Events that never reached MongoDB: the queue was full (and no spool could take them), or left unwritten at shutdown. Each is also logged (at most one line per 10 s).", count(sink.Dropped))
	metrics.CounterFunc("bulwark_gateway_events_stream_dropped_total", "Events not added to the live Redis Stream because its queue was full.", count(sink.StreamDropped))
	metrics.CounterFunc("bulwark_gateway_events_spooled_total", "Events parked in the spool on disk while MongoDB was down or slow.", count(sink.Spooled))
	metrics.CounterFunc("bulwark_gateway_events_folded_total", "Repeats folded into an earlier event's count.", count(sink.Folded))
	metrics.GaugeFunc("bulwark_gateway_redis_circuit_open", "1 while the Redis circuit breaker is open: calls fail at once, the gateway runs on its in-memory fallback (fail_mode open) or answers 503 (closed).",
		func() float64 {
			if breaker.Open() {
				return 1
			}
			return 0
		})
	metrics.CounterFunc("bulwark_gateway_redis_circuit_opens_total", "Times the Redis circuit breaker opened.",
		func() float64 { return float64(breaker.Opens()) })
	metrics.GaugeFunc("bulwark_gateway_fallback_clients", "Client states this gateway keeps in memory while Redis is unreachable (at most redis.fallback_clients).",
		func() float64 { return float64(fallback.Len()) })
	metrics.GaugeFunc("bulwark_gateway_fallback_bans", "Bans this gateway made while Redis could not take them, enforced here until written back.",
		func() float64 { return float64(fallback.Bans()) })
	metrics.CounterFunc("bulwark_gateway_redis_circuit_rejected_total", "Redis calls and pipelines refused by the open circuit breaker without waiting.",
		func() float64 { return float64(breaker.Rejected()) })
	gw, err := server.New(cfg, server.Deps{
		Traffic: store, Bans: banStore, Fallback: fallback, Lists: listStore, Limiter: limiter, Keys: keys, JWT: jwtDep, Guard: guard,
		Scorer: scorer, Local: local, Events: sink, Stats: counter, Audit: auditLog, Tunnels: tunnelReg, Metrics: metrics, Log: log,
		Ready: func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	})
	if err != nil {
		return err
	}
	conns, err := connLimiter(cfg, log)
	if err != nil {
		return err
	}
	metrics.Connections(conns.Stats)
	metrics.Tunnels(tunnelReg.Stats)
	rl := &reloader{path: *cfgPath, getenv: getenv, gw: gw, lists: listStore, guard: guard, conns: conns, jwt: jwtv, tunnels: tunnelReg, log: log}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Every connection's bytes are scanned for ambiguous request framing
	// (package framing); Guard refuses those requests before echo sees
	// them and closes the connection.
	srv := &http.Server{
		Handler: framing.Guard(gw, func(r *http.Request, why framing.Reason) {
			decision := "bad_framing"
			if why == framing.TooManyFields {
				decision = "too_many_headers"
			}
			metrics.Refused(decision, why.Status())
			log.Warn("request framing refused", "reason", why.String(), "remote", r.RemoteAddr, "method", r.Method)
		}),
		ConnContext:                  framing.ConnContext,
		ConnState:                    conns.ConnState,
		DisableGeneralOptionsHandler: true, // "OPTIONS *" must reach Guard too
		ReadHeaderTimeout:            cfg.Edge.ReadHeaderTimeout,
		IdleTimeout:                  cfg.Edge.Connections.IdleTimeout,
		MaxHeaderBytes:               cfg.Edge.MaxHeaderBytes,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "routes", len(cfg.Routes))
	adminSrv, adminLn, err := newAdmin(cfg, gw, rl, adminDeps{
		lists: listStore, bans: banStore, limiter: limiter, keys: keys, guard: guard, events: sink, audit: auditLog, metrics: metrics,
		tunnels: tunnelReg, log: log,
	})
	if err != nil {
		return err
	}

	// Background loops outlive the server by a little: requests still in
	// flight at shutdown publish events, which are then flushed.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var g errgroup.Group
	probe := redisbreaker.Ping(ropt)
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		probe = redisbreaker.ClusterPing(cc) // follows a failover: see ClusterPing
	}
	g.Go(func() error { return breaker.Run(bg, time.Second, probe) })
	g.Go(func() error { return sink.Run(bg) })
	g.Go(func() error { return counter.Run(bg, 500*time.Millisecond) })
	g.Go(func() error { ensureIndexes(bg, coll, cfg.Mongo.Retention, log); return nil })
	g.Go(func() error { return listStore.Run(bg, time.Second) })
	g.Go(func() error { return tunnels.Watch(bg, rdb, wire.BanChannel(cfg.Redis.Prefix), notices, log) })
	g.Go(func() error { return auditLog.Run(bg) })
	g.Go(func() error {
		actx, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		if err := audit.EnsureIndexes(actx, auditColl); err != nil {
			log.Warn("audit indexes not created", "err", err)
		}
		return nil
	})
	g.Go(func() error { rl.watch(bg, hup, 2*time.Second); return nil })
	if jwtv != nil {
		g.Go(func() error { return jwtv.Run(bg, cfg.JWT.ReloadInterval) })
	}
	if adminSrv != nil {
		log.Info("admin listening", "addr", adminLn.Addr().String())
		go func() { _ = adminSrv.Serve(adminLn) }()
	}

	serveErr := make(chan error, 1)
	// Limits first (a refused connection is never scanned), then the
	// framing scanner over what the server reads, which also bounds the
	// header fields of a request; ConnState sees the framing wrapper and
	// unwraps it (NetConn).
	scanned := framing.Listen(conns.Listen(ln), framing.Options{MaxFields: cfg.Edge.MaxHeaderCount})
	go func() { serveErr <- srv.Serve(scanned) }()
	var draining time.Time
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		draining = time.Now()
		log.Info("draining", "shutdown_timeout", cfg.ShutdownTimeout, "connections_open", conns.Stats().Open)
		err = drain(cfg.ShutdownTimeout*drainShare/10, conns, log, srv, adminSrv)
		<-serveErr
	}
	stopBG()
	_ = g.Wait()
	attrs := []any{"events_written", sink.Written(), "events_dropped", sink.Dropped(), "events_folded", sink.Folded()}
	if !draining.IsZero() {
		attrs = append(attrs, "shutdown_seconds", time.Since(draining).Seconds())
	}
	log.Info("stopped", attrs...)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// A shutdown is bounded by shutdown_timeout, in shares (tenths) taken one
// after the other: requests in flight get half of it, the event and audit
// flush three tenths, the MongoDB disconnect one tenth; the last tenth is
// slack for the rest (the log, the stats flush, goroutines ending).
const (
	drainShare      = 5
	flushShare      = 3
	disconnectShare = 1
)

// drain stops the listeners at once, closes idle connections, and lets
// requests in flight finish for at most d; then it closes every connection
// still open, hijacked ones (tunnelled upgrades) included.
func drain(d time.Duration, conns *connlimit.Limiter, log *slog.Logger, srvs ...*http.Server) error {
	sctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	errs := make([]error, len(srvs))
	var wg sync.WaitGroup
	for i, s := range srvs {
		if s != nil {
			wg.Go(func() { errs[i] = s.Shutdown(sctx) })
		}
	}
	wg.Wait()
	if sctx.Err() != nil {
		for _, s := range srvs {
			if s != nil {
				_ = s.Close()
			}
		}
		n := conns.CloseAll()
		log.Warn("requests still in flight at the drain deadline were cut", "drain", d, "connections_closed", n)
		return nil
	}
	return errs[0]
}

// connLimiter raises the open-file limit to its hard limit, derives the
// connection maximum from it unless connections.max is set, and logs what
// it works with.
func connLimiter(cfg *config.Config, log *slog.Logger) (*connlimit.Limiter, error) {
	soft, hard, err := connlimit.RaiseFileLimit()
	if err != nil {
		log.Warn("open-file limit not raised", "err", err, "nofile_soft", soft, "nofile_hard", hard)
	}
	cc := cfg.Edge.Connections
	maxConns, derived := cc.Max, cc.Max == 0
	switch {
	case derived && soft > 0:
		maxConns = connlimit.DefaultMax(soft)
	case derived:
		maxConns = connlimit.DefaultMaxCap // no open-file limit to go by
	case soft > 0 && uint64(maxConns) > soft:
		log.Warn("connections.max is above the open-file limit: accept will fail before the limit is reached",
			"max", maxConns, "nofile", soft)
	}
	l, err := connlimit.New(connlimit.Config{Max: maxConns, PerAddress: cc.PerAddress, Exempt: cfg.TrustedProxies})
	if err != nil {
		return nil, fmt.Errorf("connections: %w", err)
	}
	log.Info("connection limits", "max", maxConns, "max_derived", derived, "nofile_soft", soft, "nofile_hard", hard,
		"reclaim_idle_above", l.HighWater(), "per_address", cc.PerAddress, "per_address_exempt", len(cfg.TrustedProxies),
		"idle_timeout", cc.IdleTimeout, "shutdown_timeout", cfg.ShutdownTimeout)
	return l, nil
}

// ensureIndexes retries until MongoDB is reachable: the gateway serves
// traffic meanwhile and events wait in the sink's queue. Where the server
// has no TTL indexes it then sweeps expired events itself.
func ensureIndexes(ctx context.Context, coll *mongo.Collection, retention time.Duration, log *slog.Logger) {
	wait := 500 * time.Millisecond
	for {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := events.EnsureIndexes(ictx, coll, retention)
		cancel()
		if err == nil {
			return
		}
		if errors.Is(err, events.ErrNoTTL) {
			log.Info("no TTL index support: sweeping expired events every 10 minutes")
			sweep(ctx, coll, retention, log)
			return
		}
		log.Warn("event indexes not created yet", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func sweep(ctx context.Context, coll *mongo.Collection, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if n, err := events.Sweep(sctx, coll, retention, time.Now()); err != nil {
			log.Warn("event sweep failed", "err", err)
		} else if n > 0 {
			log.Info("expired events removed", "count", n)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// jwtOptions maps the jwt section onto the verifier.
func jwtOptions(j config.JWT) jwtauth.Options {
	return jwtauth.Options{
		PrincipalClaim: j.PrincipalClaim, Issuer: j.Issuer, Audience: j.Audience,
		Leeway: j.Leeway, ExpOptional: !j.RequireExp, Keys: j.Keys, JWKSFile: j.JWKSFile,
	}
}

// count adapts an int64 total to a metric function.
func count(f func() int64) func() float64 { return func() float64 { return float64(f()) } }
