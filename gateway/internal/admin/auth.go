package admin

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/shared/clientid"
)

// Auth holds the admin credentials: a bearer token, HTTP Basic credentials,
// or both. Either scheme is accepted when configured. All empty is an error:
// the admin API is never open.
type Auth struct {
	Token    string
	Username string
	Password string
}

func (a Auth) validate() error {
	switch {
	case (a.Username == "") != (a.Password == ""):
		return errors.New("admin: auth needs both a username and a password for Basic")
	case a.Token == "" && a.Password == "":
		return errors.New("admin: auth needs a token or a username and password; the admin API is never open")
	}
	return nil
}

// Lockout bounds failed authentication per client IP (the TCP peer): after
// Failures failures within Window every request from that IP gets 429, even
// with correct credentials, until the oldest of them leaves the window.
type Lockout struct {
	Failures   int           // default 5
	Window     time.Duration // default 300s
	MaxClients int           // IPs tracked at once, oldest evicted first; default 10000
}

func (l Lockout) validate() error {
	if l.Failures < 0 || l.Window < 0 || l.MaxClients < 0 {
		return errors.New("admin: lockout settings must not be negative")
	}
	return nil
}

func (l Lockout) withDefaults() Lockout {
	if l.Failures == 0 {
		l.Failures = 5
	}
	if l.Window == 0 {
		l.Window = 300 * time.Second
	}
	if l.MaxClients == 0 {
		l.MaxClients = 10000
	}
	return l
}

// checker compares credentials in constant time. It compares SHA-256
// digests so that neither the secrets' lengths nor their prefixes leak.
type checker struct {
	token, user, pass  [sha256.Size]byte
	hasToken, hasBasic bool
	challenge          []string
}

func newChecker(a Auth) *checker {
	c := &checker{hasToken: a.Token != "", hasBasic: a.Password != ""}
	c.token = sha256.Sum256([]byte(a.Token))
	c.user = sha256.Sum256([]byte(a.Username))
	c.pass = sha256.Sum256([]byte(a.Password))
	if c.hasBasic {
		c.challenge = append(c.challenge, `Basic realm="bulwark-admin"`)
	}
	if c.hasToken {
		c.challenge = append(c.challenge, `Bearer realm="bulwark-admin"`)
	}
	return c
}

func equal(want [sha256.Size]byte, got string) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], g[:]) == 1
}

// ok reports whether r carries valid credentials.
func (c *checker) ok(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if scheme, tok, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
		return c.hasToken && equal(c.token, strings.TrimSpace(tok))
	}
	if u, p, found := r.BasicAuth(); found {
		// Both compared every time: no early exit on a wrong username.
		uok, pok := equal(c.user, u), equal(c.pass, p)
		return c.hasBasic && uok && pok
	}
	return false
}

// failures is a bounded, in-memory record of recent authentication
// failures per client IP.
type failures struct {
	mu      sync.Mutex
	cfg     Lockout
	byIP    map[string]*list.Element
	recency *list.List // of *failRecord, most recently failed at the front
}

type failRecord struct {
	ip    string
	times []time.Time // at most cfg.Failures, oldest first
}

func newFailures(cfg Lockout) *failures {
	return &failures{cfg: cfg, byIP: make(map[string]*list.Element), recency: list.New()}
}

// attempt runs one authentication for ip at now: if ip is locked out it
// returns how long for, without checking; otherwise it runs check (which
// says whether the credentials are right and whether this attempt counts as
// a guess), records a counted failure or forgets ip on success.
func (f *failures) attempt(ip string, now time.Time, check func() (ok, counts bool)) (wait time.Duration, ok, counted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wait := f.lockedForLocked(ip, now); wait > 0 {
		return wait, false, false
	}
	ok, counts := check()
	switch {
	case ok:
		f.forgetLocked(ip)
	case counts:
		f.failLocked(ip, now)
	}
	return 0, ok, counts
}

// lockedForLocked returns how long ip stays locked out, or 0. f.mu is held.
func (f *failures) lockedForLocked(ip string, now time.Time) time.Duration {
	el, ok := f.byIP[ip]
	if !ok {
		return 0
	}
	rec := el.Value.(*failRecord)
	f.prune(rec, now)
	if len(rec.times) < f.cfg.Failures {
		return 0
	}
	return rec.times[0].Add(f.cfg.Window).Sub(now)
}

// failLocked records a failure from ip at now. f.mu is held.
func (f *failures) failLocked(ip string, now time.Time) {
	el, ok := f.byIP[ip]
	if !ok {
		if f.recency.Len() >= f.cfg.MaxClients {
			oldest := f.recency.Back()
			delete(f.byIP, oldest.Value.(*failRecord).ip)
			f.recency.Remove(oldest)
		}
		el = f.recency.PushFront(&failRecord{ip: ip})
		f.byIP[ip] = el
	}
	f.recency.MoveToFront(el)
	rec := el.Value.(*failRecord)
	f.prune(rec, now)
	rec.times = append(rec.times, now)
	if n := len(rec.times); n > f.cfg.Failures {
		rec.times = append(rec.times[:0], rec.times[n-f.cfg.Failures:]...)
	}
}

// forgetLocked drops ip's record after a success. f.mu is held.
func (f *failures) forgetLocked(ip string) {
	if el, ok := f.byIP[ip]; ok {
		delete(f.byIP, ip)
		f.recency.Remove(el)
	}
}

func (f *failures) prune(rec *failRecord, now time.Time) {
	i := 0
	for i < len(rec.times) && !rec.times[i].After(now.Add(-f.cfg.Window)) {
		i++
	}
	rec.times = rec.times[i:]
}

// lockoutKey is whom wrong credentials count against: the TCP peer's
// client (clientid), so an IPv6 peer cannot rotate through its /64 for 5
// more guesses per address.
func lockoutKey(peer string) string {
	if ip, err := netip.ParseAddr(peer); err == nil {
		return clientid.Display(ip)
	}
	return peer
}

// authenticate is the admin API's first middleware: lockout, then
// credentials. Failures are audited and counted against the TCP peer's
// client.
func authenticate(c *checker, f *failures, audit AuditSink, now func() time.Time) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ctx echo.Context) error {
			ip, t := lockoutKey(ctx.RealIP()), now()
			r := ctx.Request()
			// The lockout check, the credential check and the count happen
			// under one lock, so concurrent guesses cannot all slip past
			// the check before any of them is counted.
			wait, ok, counted := f.attempt(ip, t, func() (bool, bool) {
				return c.ok(r), r.Header.Get("Authorization") != ""
			})
			if wait > 0 {
				ctx.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				return echo.NewHTTPError(http.StatusTooManyRequests, "Too many failed authentication attempts")
			}
			if !ok {
				// Only wrong credentials count toward the lockout: a client
				// that has not sent any yet (a browser's first try) has
				// guessed nothing.
				details := "Missing credentials"
				if counted {
					details = "Invalid credentials"
				}
				audit.Record(ActionAuthFailed, details, r)
				for _, ch := range c.challenge {
					ctx.Response().Header().Add("WWW-Authenticate", ch)
				}
				return echo.NewHTTPError(http.StatusUnauthorized, "Unauthorized")
			}
			return next(ctx)
		}
	}
}
