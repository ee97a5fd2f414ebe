package server

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// The history API's defaults.
const (
	defaultLimit     = 50
	defaultStatsSpan = 24 * time.Hour
	defaultTop       = 10
	clientEvents     = 100
)

type api struct {
	d Deps

	// The default summary (the last 24 hours, as every open dashboard asks
	// for it every few seconds) is computed at most once per statsTTL.
	mu          sync.Mutex
	recent      map[int]history.Stats // by top
	recentUntil time.Time
}

// statsTTL is how long a default summary is served again.
const statsTTL = 5 * time.Second

func badParam(name, why string) error {
	return echo.NewHTTPError(http.StatusBadRequest, name+": "+why)
}

// timeParam reads an RFC 3339 time or Unix seconds; zero when absent.
func timeParam(c echo.Context, name string) (time.Time, error) {
	s := c.QueryParam(name)
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badParam(name, "must be an RFC 3339 time or Unix seconds")
	}
	return t.UTC(), nil
}

func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "must be an integer in ["+strconv.Itoa(lo)+", "+strconv.Itoa(hi)+"]")
	}
	return n, nil
}

// clientParam reads a client as an operator names it (package clientid):
// an address, or an IPv6 /64 such as "2001:db8:1:2::/64". It returns the
// client (for IPv6, its /64, whichever address of it was given) and what
// to look its events up by: the address when one was given (history keeps
// each request's own address), the /64 when the /64 was.
func clientParam(s, name string) (client netip.Addr, events string, err error) {
	id, err := clientid.Parse(s)
	if err != nil {
		return netip.Addr{}, "", badParam(name, "must be an IP address or an IPv6 /64 ("+err.Error()+")")
	}
	if strings.Contains(s, "/") {
		return id, clientid.Display(id), nil
	}
	a, _ := netip.ParseAddr(s) // Parse has checked it
	return id, a.Unmap().String(), nil
}

// pathClient is clientParam on a path segment, where a /64's slash comes
// escaped.
func pathClient(c echo.Context, name string) (netip.Addr, string, error) {
	s, err := url.PathUnescape(c.Param(name))
	if err != nil {
		s = c.Param(name)
	}
	return clientParam(s, name)
}

func (a *api) unavailable(what string, err error) error {
	a.d.Log.Warn(what+" unavailable", "err", err)
	return echo.NewHTTPError(http.StatusServiceUnavailable, what+" unavailable")
}

// eventTypes are the types the type filter accepts.
var eventTypes = map[wire.EventType]bool{
	wire.EventBlock: true, wire.EventThrottle: true, wire.EventBan: true, wire.EventUnban: true,
	wire.EventDenyList: true, wire.EventAuthFailure: true, wire.EventBruteforceBlock: true,
	wire.EventKeyIssued: true, wire.EventKeyInvalid: true, wire.EventShadowBlock: true, wire.EventAdmin: true,
}

var countryCode = regexp.MustCompile(`^[A-Za-z]{2}$`)

// events: GET /api/events?from&to&type&ip&country&route&min_score&cursor&limit
func (a *api) events(c echo.Context) error {
	q := history.Query{Type: wire.EventType(c.QueryParam("type")), Country: strings.ToUpper(c.QueryParam("country")), Route: c.QueryParam("route")}
	if q.Type != "" && !eventTypes[q.Type] {
		return badParam("type", "unknown event type")
	}
	if q.Country != "" && !countryCode.MatchString(q.Country) {
		return badParam("country", "must be an ISO 3166 alpha-2 code such as GB")
	}
	if q.Route != "" && !strings.HasPrefix(q.Route, "/") {
		return badParam("route", `must be a path prefix starting with "/"`)
	}
	var err error
	if q.From, err = timeParam(c, "from"); err != nil {
		return err
	}
	if q.To, err = timeParam(c, "to"); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return badParam("from", "must be before to")
	}
	if s := c.QueryParam("ip"); s != "" {
		if _, q.IP, err = clientParam(s, "ip"); err != nil {
			return err
		}
	}
	if s := c.QueryParam("min_score"); s != "" {
		if q.MinScore, err = strconv.ParseFloat(s, 64); err != nil || q.MinScore < 0 || q.MinScore > 1 {
			return badParam("min_score", "must be a number in [0, 1]")
		}
	}
	if s := c.QueryParam("cursor"); s != "" {
		if q.After, err = history.ParseCursor(s); err != nil {
			return badParam("cursor", "is not one this API returned")
		}
	}
	if q.Limit, err = intParam(c, "limit", defaultLimit, 1, history.MaxLimit); err != nil {
		return err
	}
	page, err := a.d.Events.Events(c.Request().Context(), q)
	if err != nil {
		return a.unavailable("event history", err)
	}
	body := map[string]any{"events": page.Events}
	if !page.Next.IsZero() {
		body["next"] = page.Next.String()
	}
	return c.JSON(http.StatusOK, body)
}

// maxStatsSpan bounds one /api/stats range.
const maxStatsSpan = 31 * 24 * time.Hour

// stats: GET /api/stats?from&to&top (default: the last 24 hours, top 10)
func (a *api) stats(c echo.Context) error {
	from, err := timeParam(c, "from")
	if err != nil {
		return err
	}
	to, err := timeParam(c, "to")
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = a.d.Now().UTC()
	}
	if from.IsZero() {
		from = to.Add(-defaultStatsSpan)
	}
	if !from.Before(to) {
		return badParam("from", "must be before to")
	}
	if to.Sub(from) > maxStatsSpan {
		// Four aggregations over the whole collection on every call would
		// be an easy way to load MongoDB from an open dashboard.
		return badParam("from", "the range may span at most 31 days")
	}
	top, err := intParam(c, "top", defaultTop, 1, history.MaxLimit)
	if err != nil {
		return err
	}
	byDefault := c.QueryParam("from") == "" && c.QueryParam("to") == ""
	if byDefault {
		if st, ok := a.cached(top); ok {
			return c.JSON(http.StatusOK, st)
		}
	}
	st, err := a.d.Summaries.Stats(c.Request().Context(), from, to, top)
	if err != nil {
		return a.unavailable("event history", err)
	}
	if byDefault {
		a.keep(top, st)
	}
	return c.JSON(http.StatusOK, st)
}

func (a *api) cached(top int) (history.Stats, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.recent[top]
	return st, ok && a.d.Now().Before(a.recentUntil)
}

func (a *api) keep(top int, st history.Stats) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.d.Now()
	if !now.Before(a.recentUntil) {
		a.recent, a.recentUntil = map[int]history.Stats{}, now.Add(statsTTL)
	}
	if len(a.recent) < 8 {
		a.recent[top] = st
	}
}

// Aliases name the two halves of a clientView.
type (
	liveState = traffic.Client
	pastState = history.Client
)

// clientView is everything known about one IP: its client's ban and last
// minute of requests from Redis (for IPv6 the /64's, as the gateways keep
// them), its events and latest score from MongoDB (the address's, or the
// whole /64's when the /64 was asked for). When one of the two is
// unavailable the other is still served, and Unavailable names what is
// missing.
type clientView struct {
	IP     string `json:"ip"`     // as asked: an address, or a /64
	Client string `json:"client"` // the client the gateways keep: the address, or its /64
	liveState
	pastState
	Unavailable []string `json:"unavailable,omitempty"`
}

// client: GET /api/ip/{ip}
func (a *api) client(c echo.Context) error {
	id, ip, err := pathClient(c, "ip")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v := clientView{IP: ip, Client: clientid.Display(id)}
	var liveErr, histErr error
	if v.liveState, liveErr = a.d.Clients.Client(ctx, id, a.d.Now()); liveErr != nil {
		a.d.Log.Warn("live client state unavailable", "err", liveErr)
		v.Unavailable = append(v.Unavailable, "live client state")
	}
	if v.pastState, histErr = a.d.Summaries.Client(ctx, ip, clientEvents); histErr != nil {
		a.d.Log.Warn("event history unavailable", "err", histErr)
		v.Unavailable = append(v.Unavailable, "event history")
	}
	if liveErr != nil && histErr != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "live client state and event history unavailable")
	}
	if v.Events == nil {
		v.Events = []wire.Event{}
	}
	return c.JSON(http.StatusOK, v)
}

// unban: POST /api/bans/{ip}/unban (admin token). Any address of an IPv6
// /64, or the /64, lifts the /64's ban; the answer names the client.
func (a *api) unban(c echo.Context) error {
	id, _, err := pathClient(c, "ip")
	if err != nil {
		return err
	}
	ip := clientid.Display(id)
	ev, err := a.d.Clients.Unban(c.Request().Context(), id, a.d.Now())
	switch {
	case errors.Is(err, traffic.ErrNotBanned):
		return echo.NewHTTPError(http.StatusNotFound, "no active ban for "+ip)
	case err != nil && ev.ID == "":
		return a.unavailable("ban store", err)
	case err != nil:
		// The ban is lifted; only its record failed.
		a.d.Log.Warn("unban not fully recorded", "ip", ip, "err", err)
	}
	if a.d.Unbanned != nil {
		a.d.Unbanned(ip)
	}
	a.d.Log.Info("unbanned", "ip", ip, "event_id", ev.ID)
	return c.JSON(http.StatusOK, map[string]any{"unbanned": ip, "event": ev})
}
