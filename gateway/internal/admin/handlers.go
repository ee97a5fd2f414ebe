package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/shared/clientid"
)

const maxBody = 64 << 10

type handlers struct{ d Deps }

// ---- configuration and status ----

type reloadResponse struct {
	Status      string `json:"status"`
	Message     string `json:"message"`
	RoutesCount int    `json:"routes_count"`
	RateLimit   int64  `json:"rate_limit"`
}

func (h *handlers) reload(c echo.Context) error {
	r := c.Request()
	s, err := h.d.Reload(r.Context())
	if err != nil {
		// The old configuration stays live: Reload validates before it swaps.
		h.d.Audit.Record(ActionConfigReloadFailed, err.Error(), r)
		return echo.NewHTTPError(http.StatusBadRequest, "Failed to reload configuration: "+err.Error())
	}
	h.d.Audit.Record(ActionConfigReload, fmt.Sprintf("Reloaded %d routes", s.RoutesCount), r)
	return c.JSON(http.StatusOK, reloadResponse{
		Status: "success", Message: "Configuration reloaded successfully",
		RoutesCount: s.RoutesCount, RateLimit: s.RateLimit,
	})
}

func (h *handlers) routes(c echo.Context) error {
	rs := h.d.Routes()
	if rs == nil {
		rs = []Route{}
	}
	return c.JSON(http.StatusOK, rs)
}

func (h *handlers) config(c echo.Context) error {
	return c.JSON(http.StatusOK, h.d.Config())
}

func (h *handlers) seedConfig(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "config": h.d.Config()})
}

func (h *handlers) status(c echo.Context) error {
	ctx := c.Request().Context()
	st := h.d.Status(ctx)
	st.Status = "running"
	if st.RateLimit.WindowSize == 0 {
		st.RateLimit.WindowSize = 60
	}
	a, err := h.d.AuditLog.Stats(ctx)
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("audit stats: %w", err))
	}
	st.Audit = a
	return c.JSON(http.StatusOK, st)
}

// ---- proxy rate limit ----

type rateLimitStats struct {
	IP               string `json:"ip"`
	RequestsInWindow int64  `json:"requests_in_window"`
	Limit            int64  `json:"limit"`
	Remaining        int64  `json:"remaining"`
}

func (h *handlers) rateLimitStats(c echo.Context) error {
	ip, err := clientParam(c, "ip")
	if err != nil {
		return err
	}
	n, limit, err := h.d.RateLimit.Stats(c.Request().Context(), ip)
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("rate limit stats %s: %w", clientid.Display(ip), err))
	}
	return c.JSON(http.StatusOK, rateLimitStats{IP: clientid.Display(ip), RequestsInWindow: n, Limit: limit, Remaining: max(0, limit-n)})
}

func (h *handlers) clearRateLimit(c echo.Context) (netip.Addr, bool, error) {
	ip, err := clientParam(c, "ip")
	if err != nil {
		return ip, false, err
	}
	cleared, err := h.d.RateLimit.Clear(c.Request().Context(), ip)
	if err != nil {
		return ip, false, h.d.Errors.domainError(fmt.Errorf("clear rate limit %s: %w", clientid.Display(ip), err))
	}
	h.d.Audit.Record(ActionRateLimitClear, "Cleared rate limit for "+clientid.Display(ip), c.Request())
	return ip, cleared, nil
}

func (h *handlers) rateLimitClear(c echo.Context) error {
	ip, cleared, err := h.clearRateLimit(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ip": clientid.Display(ip), "cleared": cleared})
}

// seedRateLimitClear always succeeds for a valid IP, as seed 001 did.
func (h *handlers) seedRateLimitClear(c echo.Context) error {
	ip, _, err := h.clearRateLimit(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "success", "message": "Rate limit cleared for " + clientid.Display(ip)})
}

// ---- allow and deny lists ----

type listResponse struct {
	Kind    ListKind    `json:"kind"`
	Entries []ListEntry `json:"entries"`
}

type listChange struct {
	Kind ListKind `json:"kind"`
	CIDR string   `json:"cidr"`
}

func kindParam(c echo.Context) (ListKind, error) {
	switch k := ListKind(c.Param("kind")); k {
	case Allow, Deny:
		return k, nil
	}
	return "", badRequest("kind", "must be allow or deny")
}

func (h *handlers) listEntries(c echo.Context) error {
	kind, err := kindParam(c)
	if err != nil {
		return err
	}
	es, err := h.d.Lists.List(c.Request().Context(), kind)
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("list %s: %w", kind, err))
	}
	if es == nil {
		es = []ListEntry{}
	}
	return c.JSON(http.StatusOK, listResponse{Kind: kind, Entries: es})
}

func (h *handlers) addToList(c echo.Context, kind ListKind, field, cidr string) (string, error) {
	if cidr == "" {
		return "", badRequest(field, "required")
	}
	stored, err := h.d.Lists.Add(c.Request().Context(), kind, cidr)
	if err != nil {
		return "", h.d.Errors.domainError(fmt.Errorf("add %s to %s list: %w", cidr, kind, err))
	}
	h.d.Audit.Record(ActionListAdd, fmt.Sprintf("Added %s to %s list", stored, kind), c.Request())
	return stored, nil
}

func (h *handlers) removeFromList(c echo.Context, kind ListKind, field, cidr string) error {
	if cidr == "" {
		return badRequest(field, "required")
	}
	if err := h.d.Lists.Remove(c.Request().Context(), kind, cidr); err != nil {
		return h.d.Errors.domainError(fmt.Errorf("remove %s from %s list: %w", cidr, kind, err))
	}
	h.d.Audit.Record(ActionListRemove, fmt.Sprintf("Removed %s from %s list", cidr, kind), c.Request())
	return nil
}

func (h *handlers) listAdd(c echo.Context) error {
	kind, err := kindParam(c)
	if err != nil {
		return err
	}
	var body struct {
		CIDR string `json:"cidr"`
	}
	if err := decode(c, &body); err != nil {
		return err
	}
	stored, err := h.addToList(c, kind, "cidr", body.CIDR)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, listChange{Kind: kind, CIDR: stored})
}

// listRemove takes the CIDR from ?cidr=, since a slash cannot sit in a path
// segment unescaped.
func (h *handlers) listRemove(c echo.Context) error {
	kind, err := kindParam(c)
	if err != nil {
		return err
	}
	cidr := c.QueryParam("cidr")
	if err := h.removeFromList(c, kind, "cidr", cidr); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listChange{Kind: kind, CIDR: cidr})
}

type seedSubnet struct {
	IPWithMask string `json:"ip_with_mask"`
}

func (h *handlers) seedListAdd(kind ListKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body seedSubnet
		if err := decode(c, &body); err != nil {
			return err
		}
		if _, err := h.addToList(c, kind, "ip_with_mask", body.IPWithMask); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct{}{})
	}
}

func (h *handlers) seedListRemove(kind ListKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body seedSubnet
		if err := decode(c, &body); err != nil {
			return err
		}
		if err := h.removeFromList(c, kind, "ip_with_mask", body.IPWithMask); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct{}{})
	}
}

// ---- bans ----

func (h *handlers) bans(c echo.Context) error {
	bs, err := h.d.Bans.List(c.Request().Context())
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("list bans: %w", err))
	}
	out := make([]banView, len(bs))
	for i, b := range bs {
		out[i] = banView{IP: clientid.Display(b.IP), Reason: b.Reason, ExpiresAt: b.ExpiresAt}
	}
	return c.JSON(http.StatusOK, map[string][]banView{"bans": out})
}

// banView is a Ban as the API shows it: the client as clientid.Display
// spells it ("2001:db8:1:2::/64" for IPv6).
type banView struct {
	IP        string    `json:"ip"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
}

type banRequest struct {
	IP     string   `json:"ip"`
	TTL    duration `json:"ttl"`
	Reason string   `json:"reason"`
}

type banResponse struct {
	IP        string    `json:"ip"`
	TTL       string    `json:"ttl"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *handlers) banAdd(c echo.Context) error {
	var body banRequest
	if err := decode(c, &body); err != nil {
		return err
	}
	ip, err := parseClient("ip", body.IP)
	if err != nil {
		return err
	}
	who := clientid.Display(ip)
	ttl := time.Duration(body.TTL)
	switch {
	case ttl < 0:
		return badRequest("ttl", "must be positive")
	case ttl == 0:
		ttl = h.d.BanTTL
	}
	if body.Reason == "" {
		body.Reason = "admin"
	}
	if err := h.d.Bans.Add(c.Request().Context(), ip, ttl, body.Reason); err != nil {
		return h.d.Errors.domainError(fmt.Errorf("ban %s: %w", who, err))
	}
	h.d.Audit.Record(ActionBanAdd, fmt.Sprintf("Banned %s for %s: %s", who, ttl, body.Reason), c.Request())
	return c.JSON(http.StatusCreated, banResponse{IP: who, TTL: ttl.String(), Reason: body.Reason, ExpiresAt: h.d.Now().Add(ttl).UTC()})
}

func (h *handlers) banRemove(c echo.Context) error {
	ip, err := clientParam(c, "ip")
	if err != nil {
		return err
	}
	who := clientid.Display(ip)
	removed, err := h.d.Bans.Remove(c.Request().Context(), ip)
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("unban %s: %w", who, err))
	}
	if !removed {
		return echo.NewHTTPError(http.StatusNotFound, "no ban for "+who)
	}
	h.d.Audit.Record(ActionBanRemove, "Unbanned "+who, c.Request())
	return c.JSON(http.StatusOK, map[string]any{"ip": who, "removed": true})
}

// ---- login limiter buckets ----

// resetBucket resets one bucket. The audit details never hold a password.
func (h *handlers) resetBucket(c echo.Context, which string, value *string) error {
	if value == nil || *value == "" {
		return badRequest(which, "required")
	}
	ctx, v := c.Request().Context(), *value
	var err error
	details := "Reset " + which + " bucket for " + v
	switch which {
	case "login":
		err = h.d.Buckets.ResetLogin(ctx, v)
	case "password":
		details = "Reset password bucket"
		err = h.d.Buckets.ResetPassword(ctx, v)
	case "ip":
		var ip netip.Addr
		if ip, err = parseClient("ip", v); err != nil {
			return err
		}
		details = "Reset ip bucket for " + clientid.Display(ip)
		err = h.d.Buckets.ResetIP(ctx, ip)
	}
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("reset %s bucket: %w", which, err))
	}
	h.d.Audit.Record(ActionBucketReset, details, c.Request())
	return nil
}

type bucketRequest struct {
	Login    *string `json:"login"`
	Password *string `json:"password"`
	IP       *string `json:"ip"`
}

func (h *handlers) bucketReset(c echo.Context) error {
	var body bucketRequest
	if err := decode(c, &body); err != nil {
		return err
	}
	var which string
	var value *string
	n := 0
	for _, f := range []struct {
		name string
		v    *string
	}{{"login", body.Login}, {"password", body.Password}, {"ip", body.IP}} {
		if f.v != nil {
			which, value = f.name, f.v
			n++
		}
	}
	if n != 1 {
		return badRequest("body", "exactly one of login, password or ip is required")
	}
	if err := h.resetBucket(c, which, value); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"reset": which})
}

func (h *handlers) seedReset(which string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body bucketRequest
		if err := decode(c, &body); err != nil {
			return err
		}
		v := map[string]*string{"login": body.Login, "password": body.Password, "ip": body.IP}[which]
		if err := h.resetBucket(c, which, v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct{}{})
	}
}

// ---- API keys ----

func (h *handlers) keyRevoke(c echo.Context) error {
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil || id == "" {
		return badRequest("id", "required")
	}
	if err := h.d.Keys.Revoke(c.Request().Context(), id); err != nil {
		return h.d.Errors.domainError(fmt.Errorf("revoke key: %w", err))
	}
	h.d.Audit.Record(ActionKeyRevoke, "Revoked key "+redactID(id), c.Request())
	return c.JSON(http.StatusOK, map[string]any{"id": id, "revoked": true})
}

// redactID keeps a key id's first characters for the audit log, in case the
// id is the key itself.
func redactID(id string) string {
	const keep = 8
	if len(id) <= keep {
		return id
	}
	return id[:keep] + "…"
}

// ---- audit log ----

func (h *handlers) auditLogs(c echo.Context) error {
	f := AuditFilter{Limit: 100}
	var err error
	if s := c.QueryParam("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return badRequest("limit", "must be an integer from 1 to 1000")
		}
	}
	if s := c.QueryParam("offset"); s != "" {
		if f.Offset, err = strconv.Atoi(s); err != nil || f.Offset < 0 {
			return badRequest("offset", "must be an integer of at least 0")
		}
	}
	if f.EventType = c.QueryParam("event_type"); len(f.EventType) > 64 {
		return badRequest("event_type", "too long")
	}
	if s := c.QueryParam("client_ip"); s != "" {
		// The audit log is a record of requests: an address finds its own
		// rows, a /64 every row of the /64.
		ip, err := parseClient("client_ip", s)
		if err != nil {
			return err
		}
		switch {
		case !strings.Contains(s, "/"):
			a, _ := netip.ParseAddr(s) // parseClient has checked it
			f.ClientIP = a.Unmap().String()
		case ip.Is6():
			f.ClientPattern = clientid.TextPattern(ip)
		default: // an IPv4 /32
			f.ClientIP = ip.String()
		}
	}
	es, err := h.d.AuditLog.Logs(c.Request().Context(), f)
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("audit logs: %w", err))
	}
	if es == nil {
		es = []AuditEntry{}
	}
	return c.JSON(http.StatusOK, es)
}

func (h *handlers) auditStats(c echo.Context) error {
	s, err := h.d.AuditLog.Stats(c.Request().Context())
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("audit stats: %w", err))
	}
	return c.JSON(http.StatusOK, s)
}

func (h *handlers) seedAuditStats(c echo.Context) error {
	s, err := h.d.AuditLog.Stats(c.Request().Context())
	if err != nil {
		return h.d.Errors.domainError(fmt.Errorf("audit stats: %w", err))
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "stats": s})
}

// ---- request parsing ----

// decode reads a JSON object body into v; every failure is a 400 (or 413)
// naming the field where it can.
func decode(c echo.Context, v any) error {
	r := c.Request()
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), r.Body, maxBody))
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("body", "a JSON object is required")
	case errors.As(err, &tooBig):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body: too large")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return badRequest(typeErr.Field, "must be a "+typeErr.Type.String())
	case errors.As(err, &typeErr):
		return badRequest("body", "must be a JSON object")
	}
	var fieldErr *fieldError
	if errors.As(err, &fieldErr) {
		return badRequest(fieldErr.field, fieldErr.problem)
	}
	return badRequest("body", "invalid JSON: "+err.Error())
}

// clientParam reads a client from a path segment; a /64 has its slash
// escaped there ("2001:db8:1:2::%2F64").
func clientParam(c echo.Context, name string) (netip.Addr, error) {
	s, err := url.PathUnescape(c.Param(name))
	if err != nil {
		s = c.Param(name)
	}
	return parseClient(name, s)
}

// parseClient reads a client as clientid.Parse does (an address, IPv4-mapped
// IPv6 as IPv4, or an IPv6 /64; no zone) and returns its identity: any
// address of a /64 names the /64.
func parseClient(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, badRequest(field, "required")
	}
	ip, err := clientid.Parse(s)
	if err != nil {
		return netip.Addr{}, badRequest(field, err.Error())
	}
	return ip, nil
}

// fieldError is a JSON value that parsed but is not acceptable.
type fieldError struct{ field, problem string }

func (e *fieldError) Error() string { return e.field + ": " + e.problem }

// duration is a ban TTL in JSON: a Go duration string ("90m", "24h") or a
// number of seconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return &fieldError{"ttl", fmt.Sprintf("invalid duration %q (use e.g. \"90m\", \"24h\" or seconds)", s)}
		}
		*d = duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return &fieldError{"ttl", "must be a duration string or a number of seconds"}
	}
	*d = duration(secs * float64(time.Second))
	return nil
}
