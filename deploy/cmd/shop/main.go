// Command shop is the demo application that stands behind the gateway: a
// tiny store API with a login (/auth answers {"success": ...} the way the
// gateway's API-key flow expects), a product catalogue and a checkout. It
// keeps nothing but a few products in memory.
//
// For the traffic simulator's API clients it also has what a real shop's
// API offers them: orders (POST /api/orders; GET /api/orders/{id} is the
// caller's own only for a few ids, 403 "not your order" for the rest),
// webhooks (POST /webhooks/{provider}), a status endpoint for monitors
// (GET /api/status), an endpoint that fails 30 % of the time for SDKs to
// retry (GET /api/flaky, 503), GraphQL (POST /graphql), an image service
// whose thumbnails have no extension (GET /image/{id}/{kind}/{size},
// image/jpeg) and an HTML catalogue of 1000 product pages.
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
	flaky    atomic.Uint64 // calls of GET /api/flaky
	carts    atomic.Int64
}

// htmlCatalog is how many HTML product pages the shop serves
// (/products/1 ... /products/1000): the 8 products of the API and the
// archive of past models, for the simulator's page scrapers to walk.
const htmlCatalog = 1000

// flakyMarker is in the body of GET /api/flaky's 503s: the simulator
// counts such a 503 as the application's answer, not a failure.
const flakyMarker = "flaky by design"

// flakyShare is the share, in percent, of GET /api/flaky answered 503.
const flakyShare = 30

// ownOrder reports whether order id belongs to the caller: the shop keeps
// no sessions, so every 50th order is "yours" and the rest are not.
func ownOrder(id int) bool { return id%50 == 0 }

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
		switch {
		case err != nil || id < 1 || id > htmlCatalog:
			page(w, 404, "Not found")
		case id <= len(s.products):
			page(w, 200, s.products[id-1].Name)
		default:
			page(w, 200, fmt.Sprintf("Archive model %d", id))
		}
	})
	// Product thumbnails from the image service, without an extension
	// (/image/60844/productModel/200x200): only the Content-Type says
	// they are pictures.
	mux.HandleFunc("GET /image/{id}/{kind}/{size}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(jpegStub)
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
		req, ok := orderRequest(r, len(s.products))
		if !ok {
			reply(w, 400, map[string]string{"error": "body must be {\"product_id\": 1..8, \"quantity\": >=1}"})
			return
		}
		reply(w, 200, map[string]any{"order_id": s.orders.Add(1), "status": "confirmed", "product_id": req.ProductID, "quantity": req.Quantity})
	})
	mux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		req, ok := orderRequest(r, len(s.products))
		if !ok {
			reply(w, 400, map[string]string{"error": "body must be {\"product_id\": 1..8, \"quantity\": >=1}"})
			return
		}
		reply(w, 201, map[string]any{"order_id": s.orders.Add(1), "status": "created", "product_id": req.ProductID, "quantity": req.Quantity})
	})
	mux.HandleFunc("GET /api/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		switch {
		case err != nil || id < 1:
			reply(w, 404, map[string]string{"error": "no such order"})
		case !ownOrder(id):
			reply(w, 403, map[string]string{"error": "not your order"})
		default:
			reply(w, 200, map[string]any{"order_id": id, "status": "shipped", "product_id": 1 + id%len(s.products), "quantity": 1})
		}
	})
	mux.HandleFunc("POST /webhooks/{provider}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		reply(w, 200, map[string]any{"received": true, "provider": r.PathValue("provider")})
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"status": "ok", "products": len(s.products)})
	})
	mux.HandleFunc("GET /api/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky(s.flaky.Add(1)) {
			reply(w, 503, map[string]string{"error": "temporarily unavailable (" + flakyMarker + ")"})
			return
		}
		reply(w, 200, map[string]any{"ok": true})
	})
	mux.HandleFunc("POST /graphql", s.graphql)
	return mux
}

// orderRequest reads {"product_id": 1..n, "quantity": >= 1}.
func orderRequest(r *http.Request, n int) (req struct {
	ProductID int `json:"product_id"`
	Quantity  int `json:"quantity"`
}, ok bool) {
	err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
	return req, err == nil && req.ProductID >= 1 && req.ProductID <= n && req.Quantity >= 1
}

// flaky reports whether the n-th call of GET /api/flaky fails: a
// pseudo-random flakyShare percent of them (splitmix64 of n), the same
// calls on every run.
func flaky(n uint64) bool {
	z := n + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return z%100 < flakyShare
}

// graphql answers the few operations the simulator's GraphQL clients send
// (Products, Product, AddToCart) with {"data": ...}, 200 as GraphQL
// servers do; a body that is not a query gets {"errors": [...]}, 400.
func (s *shop) graphql(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query         string         `json:"query"`
		OperationName string         `json:"operationName"`
		Variables     map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || strings.TrimSpace(req.Query) == "" {
		reply(w, 400, map[string]any{"errors": []map[string]string{{"message": "body must be {\"query\": ...}"}}})
		return
	}
	product := func() any {
		id, _ := strconv.Atoi(fmt.Sprint(req.Variables["id"]))
		if id < 1 || id > len(s.products) {
			return nil
		}
		return s.products[id-1]
	}
	var data map[string]any
	switch req.OperationName {
	case "Products":
		data = map[string]any{"products": s.products}
	case "Product":
		data = map[string]any{"product": product()}
	case "AddToCart":
		data = map[string]any{"addToCart": map[string]any{"id": fmt.Sprintf("cart-%d", s.carts.Add(1))}}
	default:
		data = map[string]any{}
	}
	reply(w, 200, map[string]any{"data": data})
}

// jpegStub is a thumbnail's bytes: a JPEG's start and end markers.
var jpegStub = []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9}

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
