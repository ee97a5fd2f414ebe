// Command scorer is Bulwark's scoring service: it answers POST /v1/score with
// a score in [0, 1], the reasons for it and the client's geo.
//
// Configuration, each flag overriding its environment variable:
//
//	-listen        BULWARK_LISTEN        address to listen on (default ":8081")
//	-geoip-db      BULWARK_GEOIP_DB      City or Country mmdb file (optional)
//	-geoip-asn-db  BULWARK_GEOIP_ASN_DB  ASN mmdb file (optional)
//	-config        BULWARK_CONFIG        scoring profile YAML (optional)
//	-profile       BULWARK_PROFILE       built-in profile when no -config: default or seed-002
//	-log-level     BULWARK_LOG_LEVEL     debug, info, warn or error (default info)
//	-dns-server    BULWARK_DNS_SERVER    DNS server (host:port) for verifying crawlers by
//	                                     forward-confirmed reverse DNS; default the system's
//	                                     resolver, "off" verifies by the allow rules' networks only
//	-dns-timeout   BULWARK_DNS_TIMEOUT   time limit of one crawler verification (default 2s)
//
// A file that is set but unreadable or invalid stops the scorer before it
// listens, with an error naming the variable (and, for the profile, the key).
// SIGHUP reloads the profile without a restart: a valid one replaces the
// active profile for every later request; an invalid one is logged with its
// keys and the old profile stays.
// Logs are JSON lines on stdout; the first says where the scorer listens.
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
	"syscall"
	"time"

	"github.com/bulwarkgw/bulwark/scorer/internal/crawlerdns"
	"github.com/bulwarkgw/bulwark/scorer/internal/geo"
	"github.com/bulwarkgw/bulwark/scorer/internal/server"
	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// The geo package's Locator is what the server consumes.
var _ server.Locator = (*geo.Locator)(nil)

// The crawlerdns package's Verifier verifies crawlers for the server.
var _ server.Crawlers = (*crawlerdns.Verifier)(nil)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "scorer:", err)
		os.Exit(1)
	}
}

// Server limits.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
)

// run starts the scorer and serves until ctx is done, then shuts down
// gracefully within the shutdown timeout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("scorer", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", env("BULWARK_LISTEN", ":8081"), "address to listen on (BULWARK_LISTEN)")
	cityPath := fs.String("geoip-db", getenv("BULWARK_GEOIP_DB"), "City or Country mmdb file (BULWARK_GEOIP_DB)")
	asnPath := fs.String("geoip-asn-db", getenv("BULWARK_GEOIP_ASN_DB"), "ASN mmdb file (BULWARK_GEOIP_ASN_DB)")
	configPath := fs.String("config", getenv("BULWARK_CONFIG"), "scoring profile YAML (BULWARK_CONFIG)")
	profileName := fs.String("profile", env("BULWARK_PROFILE", "default"), "built-in profile when no -config: default or seed-002 (BULWARK_PROFILE)")
	logLevel := fs.String("log-level", env("BULWARK_LOG_LEVEL", "info"), "debug, info, warn or error (BULWARK_LOG_LEVEL)")
	dnsServer := fs.String("dns-server", getenv("BULWARK_DNS_SERVER"), `DNS server host:port for crawler verification; "" the system's resolver, "off" none (BULWARK_DNS_SERVER)`)
	dnsTimeout := fs.String("dns-timeout", env("BULWARK_DNS_TIMEOUT", crawlerdns.DefaultTimeout.String()), "time limit of one crawler verification (BULWARK_DNS_TIMEOUT)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long to wait for requests in flight on shutdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("BULWARK_LOG_LEVEL %q: want debug, info, warn or error", *logLevel)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))

	loadProfile := func() (*profile.Profile, error) {
		if *configPath != "" {
			p, err := profile.Load(*configPath)
			if err != nil {
				return nil, fmt.Errorf("BULWARK_CONFIG %s: %w", *configPath, err)
			}
			return p, nil
		}
		p, err := profile.Builtin(*profileName)
		if err != nil {
			return nil, fmt.Errorf("BULWARK_PROFILE: %w", err)
		}
		return p, nil
	}
	prof, err := loadProfile()
	if err != nil {
		return err
	}

	locator, err := openGeo(*cityPath, *asnPath)
	if err != nil {
		return err
	}
	defer func() {
		if err := locator.Close(); err != nil {
			logger.Warn("close geoip databases", "err", err)
		}
	}()

	registry := prometheus.NewRegistry()
	crawlers, err := newCrawlers(*dnsServer, *dnsTimeout, registry, logger)
	if err != nil {
		return err
	}
	cfg := server.Config{Profile: prof, Locator: locator, Logger: logger, Registry: registry}
	if crawlers != nil {
		cfg.Crawlers = crawlers
	}
	handler, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("BULWARK_LISTEN %s: %w", *listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("scorer listening",
		"addr", ln.Addr().String(),
		"profile", prof.Name,
		"profile_file", *configPath,
		"geoip_db", *cityPath,
		"geoip_asn_db", *asnPath,
		"dns_server", dnsServerName(*dnsServer),
	)

	g, gctx := errgroup.WithContext(ctx)
	if crawlers != nil {
		g.Go(func() error { crawlers.Run(gctx); return nil })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				p, err := loadProfile()
				if err != nil {
					logger.Error("profile reload refused; keeping the active profile", "err", err)
					continue
				}
				handler.SetProfile(p)
				logger.Info("profile reloaded", "profile", p.Name)
			}
		}
	})
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("scorer shutting down")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	})
	err = g.Wait()
	logger.Info("scorer stopped")
	return err
}

// newCrawlers returns the crawler DNS verifier for BULWARK_DNS_SERVER and
// BULWARK_DNS_TIMEOUT, or nil when the server is "off".
func newCrawlers(server, timeout string, reg prometheus.Registerer, logger *slog.Logger) (*crawlerdns.Verifier, error) {
	if server == "off" {
		return nil, nil
	}
	d, err := time.ParseDuration(timeout)
	if err != nil || d <= 0 || d > time.Minute {
		return nil, fmt.Errorf("BULWARK_DNS_TIMEOUT %q: want a duration above 0 and at most 1m, e.g. 2s", timeout)
	}
	r, err := crawlerdns.NewResolver(server)
	if err != nil {
		return nil, fmt.Errorf(`BULWARK_DNS_SERVER: %w, or "off"`, err)
	}
	v, err := crawlerdns.New(crawlerdns.Config{Resolver: r, Timeout: d, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	return v, nil
}

func dnsServerName(s string) string {
	if s == "" {
		return "system"
	}
	return s
}

// openGeo opens the configured databases; with neither, the Locator knows
// only local addresses.
func openGeo(cityPath, asnPath string) (*geo.Locator, error) {
	var city, asn *geo.DB
	var err error
	if cityPath != "" {
		if city, err = geo.OpenCity(cityPath); err != nil {
			return nil, fmt.Errorf("BULWARK_GEOIP_DB: %w", err)
		}
	}
	if asnPath != "" {
		if asn, err = geo.OpenASN(asnPath); err != nil {
			_ = city.Close()
			return nil, fmt.Errorf("BULWARK_GEOIP_ASN_DB: %w", err)
		}
	}
	return geo.NewLocator(city, asn), nil
}
