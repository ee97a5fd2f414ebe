// Command shop is the demo application that stands behind the gateway: a
// tiny store API with a login (/auth answers {"success": ...} the way the
// gateway's API-key flow expects), a product catalogue and a checkout. It
// keeps nothing but a few products in memory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	listen := getenv("BULWARK_LISTEN")
	if listen == "" {
		listen = ":9000"
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.StringVar(&listen, "listen", listen, "listen address (env BULWARK_LISTEN)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "shop")
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: newShop().routes(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type product struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
	Stock int     `json:"stock"`
}

type shop struct {
	products []product
	users    map[string]user
	orders   atomic.Int64
}

type user struct{ password, role string }

func newShop() *shop {
	s := &shop{users: map[string]user{
		"alice": {"wonderland", "user"},
		"bob":   {"builder", "user"},
		"admin": {"admin-pass", "admin"},
	}}
	// Demo customers for the traffic simulator's people, each with an
	// account of their own: customer001 / pw-001 ... customer500 / pw-500.
	for i := 1; i <= 500; i++ {
		s.users[fmt.Sprintf("customer%03d", i)] = user{fmt.Sprintf("pw-%03d", i), "user"}
	}
	names := []string{"Trail runner", "Court classic", "Limited drop", "Canvas low", "Retro high", "Sandal", "Hiking boot", "Slip-on"}
	for i, n := range names {
		s.products = append(s.products, product{ID: i + 1, Name: n, Price: float64(49 + 10*i), Stock: 100 - 7*i})
	}
	return s
}

func (s *shop) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]string{"shop": "Bulwark demo shop", "try": "/api/products"})
	})
	mux.HandleFunc("POST /auth", s.auth)
	// Static assets a browser fetches with each page (the simulator's
	// people do): small, cacheable bodies.
	mux.HandleFunc("GET /assets/{file...}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", assetType(r.PathValue("file")))
		_, _ = io.WriteString(w, "/* "+r.PathValue("file")+" */\n")
	})
	// The pages people's browsers load (the simulator's browser
	// scenario): small HTML, its assets under /assets/. Like the real
	// shop, there is a favicon but no apple-touch-icon*.png: phones
	// asking for those get a 404.
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > len(s.products) {
			page(w, 404, "Not found")
			return
		}
		page(w, 200, s.products[id-1].Name)
	})
	mux.HandleFunc("GET /collections/{name}", func(w http.ResponseWriter, r *http.Request) {
		page(w, 200, "Collection "+r.PathValue("name"))
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		w.Header().Set("Content-Type", "image/x-icon")
		_, _ = w.Write([]byte{0, 0, 1, 0})
	})
	mux.HandleFunc("GET /robots.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "User-agent: *\nDisallow: /api/checkout\n")
	})
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, s.products) })
	mux.HandleFunc("GET /api/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > len(s.products) {
			reply(w, 404, map[string]string{"error": "no such product"})
			return
		}
		reply(w, 200, s.products[id-1])
	})
	mux.HandleFunc("POST /api/checkout", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ProductID int `json:"product_id"`
			Quantity  int `json:"quantity"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.ProductID < 1 || req.ProductID > len(s.products) || req.Quantity < 1 {
			reply(w, 400, map[string]string{"error": "body must be {\"product_id\": 1..8, \"quantity\": >=1}"})
			return
		}
		reply(w, 200, map[string]any{"order_id": s.orders.Add(1), "status": "confirmed", "product_id": req.ProductID, "quantity": req.Quantity})
	})
	return mux
}

// auth checks credentials from a JSON or form body and answers
// {"success": true, "role": ...} or {"success": false} with 401.
func (s *shop) auth(w http.ResponseWriter, r *http.Request) {
	var creds struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err == nil {
			creds.Username, creds.Password = r.PostForm.Get("username"), r.PostForm.Get("password")
		}
	} else {
		_ = json.NewDecoder(r.Body).Decode(&creds)
	}
	u, ok := s.users[creds.Username]
	if !ok || u.password != creds.Password {
		reply(w, 401, map[string]any{"success": false})
		return
	}
	reply(w, 200, map[string]any{"success": true, "role": u.role})
}

// assetType is the Content-Type for an asset by its extension (the
// standard table, mime.TypeByExtension), bytes of no stated kind when
// there is none.
func assetType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// page writes a small HTML page titled title.
func page(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<!doctype html><title>%s</title><link rel=stylesheet href=/assets/app.css><h1>%s</h1>\n", html.EscapeString(title), html.EscapeString(title))
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
