package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

const (
	msgNoKey        = "key not provided"
	msgBadKey       = "Invalid key"
	msgNoToken      = "bearer token not provided"
	msgBadToken     = "Invalid token"
	msgNotAllowed   = "Not allowed"
	msgBadLogin     = "Invalid credentials"
	msgIPBlocked    = "IP blocked due to repeated invalid requests."
	msgLoginLocked  = "Too many failed login attempts"
	msgLoginLimited = "Too many login attempts"
	msgBadGateway   = "Bad Gateway"
)

// loginClient forwards logins to the backend: pooled, never follows
// redirects, never uses an environment proxy.
var loginClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// apiKey requires a valid credential on routes with auth (api_key: a
// Bulwark key; jwt: a verified JWT bearer token), as the credential step
// found it, applies RBAC (to the request's method, then to the methods
// overrides name: checkOverrides), and strips a Bulwark key
// before forwarding (a JWT is the upstream's and passes). Missing and
// invalid credentials count toward the address's failure limit; crossing
// it bans the address.
func (p *pipeline) apiKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		switch v.route.Auth {
		case "api_key":
			if p.d.Keys == nil {
				return next(c)
			}
		case "jwt":
			if v.cred != credJWT {
				msg := msgNoToken
				if v.cred == credBadJWT {
					msg = msgBadToken
					p.d.Log.Debug("jwt refused", "err", v.credErr, "ip", v.ip)
				}
				return p.authFailure(c, v, msg, wire.EventKeyInvalid)
			}
			if !permitted(v.rt.cfg.APIKey.Permissions, v, c.Request(), v.role) {
				return stop(v, decisionForbidden, http.StatusForbidden, msgNotAllowed)
			}
			release, err := p.checkOverrides(c, v)
			if err != nil {
				return err
			}
			defer release()
			return next(c)
		default:
			return next(c)
		}
		r := c.Request()
		switch v.cred {
		case credKey:
		case credBadKey:
			return p.authFailure(c, v, msgBadKey, wire.EventKeyInvalid)
		case credUnverified:
			p.d.Metrics.dependencyError("redis")
			p.redisDown("api key not verified", v.credErr)
			return stop(v, decisionDegraded, http.StatusServiceUnavailable, msgDegraded)
		default:
			return p.authFailure(c, v, msgNoKey, wire.EventKeyInvalid)
		}
		p.remember(c, v, "key")
		if !permitted(v.rt.cfg.APIKey.Permissions, v, r, v.role) {
			return stop(v, decisionForbidden, http.StatusForbidden, msgNotAllowed)
		}
		release, err := p.checkOverrides(c, v)
		if err != nil {
			return err
		}
		defer release()
		apikey.Strip(r)
		return next(c)
	}
}

// permitted applies RBAC: the endpoint is the first path segment below the
// route; an endpoint without an entry is open to every valid key, a listed
// one only to the roles listed for the method.
//
// The endpoint is read from the path's key under the route's equivalence
// (v.key), so /app/SECRET, /app/secret;x=1, /app/secret. and
// /app/secret.json are all /app/secret; names are compared case-folded
// whatever the equivalence.
func permitted(perms map[string]map[string][]string, v *verdict, r *http.Request, role string) bool {
	methods, listed := endpointRules(perms, v)
	return !listed || slices.Contains(methods[r.Method], role)
}

// endpointRules returns the roles permissions gives each method on the
// request's endpoint (as permitted finds it), and whether the endpoint is
// listed: only then does the method decide anything.
func endpointRules(perms map[string]map[string][]string, v *verdict) (map[string][]string, bool) {
	if len(perms) == 0 {
		return nil, false
	}
	rest := strings.TrimPrefix(v.key, v.rt.equivalence(v.route).Key(v.route.Path))
	endpoint, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	for name, methods := range perms {
		if strings.EqualFold(name, endpoint) {
			return methods, true
		}
	}
	return nil, false
}

// authFailure counts a bad key or failed login. Five in the window are
// answered 401; the one after that is answered 403 and bans the client.
func (p *pipeline) authFailure(c echo.Context, v *verdict, msg string, typ wire.EventType) error {
	if v.bypass {
		return stop(v, decisionUnauthorized, http.StatusUnauthorized, msg)
	}
	ak := v.rt.cfg.APIKey
	// Against the address, whatever else the request showed: a valid
	// credential riding along must not move the count elsewhere.
	_, exceeded, err := p.d.Keys.Fail(c.Request().Context(), clientid.Identity(v.ip), ak.InvalidWindow, ak.InvalidThreshold, p.d.Now())
	if err != nil {
		p.d.Metrics.dependencyError("redis")
		p.redisDown("auth failure not counted", err)
	}
	if exceeded {
		return p.banForFailures(c, v)
	}
	p.publish(c, v, typ, http.StatusUnauthorized, "")
	return stop(v, decisionUnauthorized, http.StatusUnauthorized, msg)
}

func (p *pipeline) banForFailures(c echo.Context, v *verdict) error {
	p.banAs(c, v, clientid.Identity(v.ip), v.rt.cfg.APIKey.BlockFor, "repeated invalid requests")
	p.d.Stats.Request(p.d.Now(), stats.Blocked)
	p.publish(c, v, wire.EventBan, http.StatusForbidden, "")
	return stop(v, decisionBanned, http.StatusForbidden, msgIPBlocked)
}

// credentials reads the login and password from a JSON, form or multipart
// body (read whole by readBody) as the upstream reads them
// (loginname.Fields under login_protection.duplicate_fields). A login that
// is absent or not a string comes back empty.
func credentials(body []byte, contentType string, lr config.LoginRoute, dup loginname.Duplicates) (login, password string) {
	f := loginname.Fields(body, contentType, dup, lr.LoginField, lr.PasswordField)
	return f[lr.LoginField], f[lr.PasswordField]
}

// readCredentials reads the body whole (readBody), puts it back for
// forwarding and returns the login and password it names; release gives
// the body's memory back once it has been forwarded.
func (p *pipeline) readCredentials(c echo.Context, v *verdict, lr config.LoginRoute) (body []byte, login, password string, release func(), err error) {
	body, release, err = p.readBody(c, v)
	if err != nil {
		return nil, "", "", noRelease, err
	}
	r := c.Request()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	login, password = credentials(body, r.Header.Get("Content-Type"), lr, v.rt.cfg.Login.Duplicates)
	return body, login, password, release, nil
}

// guardLogin applies brute-force protection before a login is forwarded:
// the client's failure limit, the login's and the client's lockouts, and the
// login/password/client buckets. It returns nil when the login may proceed.
func (p *pipeline) guardLogin(c echo.Context, v *verdict, login, password string) error {
	if v.bypass {
		return nil
	}
	ctx := c.Request().Context()
	now := p.d.Now()
	if p.d.Keys != nil {
		ak := v.rt.cfg.APIKey
		n, err := p.d.Keys.Failures(ctx, v.id, ak.InvalidWindow, now)
		if err == nil && n >= ak.InvalidThreshold {
			// This attempt would be one failure too many: refuse it unseen.
			return p.banForFailures(c, v)
		}
	}
	if p.d.Guard == nil {
		return nil
	}
	if login == "" {
		// A login the gateway cannot read would switch every guard off.
		return stop(v, decisionForbidden, http.StatusBadRequest, "login field missing or not a string")
	}
	loginLocked, ipLocked, retry, err := p.d.Guard.Locked(ctx, login, v.ip, now)
	if err != nil {
		return p.guardDown(v, err)
	}
	if loginLocked || ipLocked {
		if retry > 0 {
			c.Response().Header().Set("Retry-After", ceilSeconds(retry))
		}
		p.publish(c, v, wire.EventBruteforceBlock, http.StatusForbidden, login)
		return stop(v, decisionForbidden, http.StatusForbidden, msgLoginLocked)
	}
	if !bucketsEnabled(v.rt.cfg.Login) {
		return nil
	}
	ok, err := p.d.Guard.Check(ctx, login, password, v.ip, now)
	if err != nil {
		return p.guardDown(v, err)
	}
	if !ok {
		c.Response().Header().Set("Retry-After", "1")
		p.publish(c, v, wire.EventBruteforceBlock, http.StatusTooManyRequests, login)
		return stop(v, decisionRateLimited, http.StatusTooManyRequests, msgLoginLimited)
	}
	return nil
}

// guardDown degrades as redis.fail_mode says when the login guard's state
// cannot be read.
func (p *pipeline) guardDown(v *verdict, err error) error {
	p.d.Metrics.dependencyError("redis")
	p.redisDown("login guard unavailable", err, "fail_mode", v.rt.cfg.Redis.FailMode)
	if v.rt.cfg.Redis.FailMode == config.FailClosed {
		return stop(v, decisionDegraded, http.StatusServiceUnavailable, msgDegraded)
	}
	v.degraded = true
	return nil
}

func bucketsEnabled(l config.Login) bool {
	return l.LoginBucket.Rate > 0 || l.PassBucket.Rate > 0 || l.IPBucket.Rate > 0
}

// recordLogin feeds the upstream's verdict to the lockouts and the failure
// limit.
func (p *pipeline) recordLogin(c echo.Context, v *verdict, login string, success bool) {
	if v.bypass {
		return
	}
	ctx := c.Request().Context()
	now := p.d.Now()
	if p.d.Guard != nil && login != "" {
		if _, _, err := p.d.Guard.Record(ctx, login, v.ip, success, now); err != nil {
			p.redisDown("login verdict not recorded", err)
		}
	}
	if !success {
		p.publish(c, v, wire.EventAuthFailure, http.StatusUnauthorized, login)
		if p.d.Keys != nil {
			ak := v.rt.cfg.APIKey
			if _, _, err := p.d.Keys.Fail(ctx, v.id, ak.InvalidWindow, ak.InvalidThreshold, now); err != nil {
				p.redisDown("auth failure not counted", err)
			}
		}
	}
}

// login forwards POST /auth to the backend with its body and headers and,
// when the backend's "success" is truthy, mints an API key.
func (p *pipeline) login(c echo.Context) error {
	v := verdictOf(c)
	v.decision = decisionLogin
	ak := v.rt.cfg.APIKey
	r := c.Request()
	lr := v.paths.logins[v.paths.authPath]
	if lr.LoginField == "" {
		lr = config.LoginRoute{LoginField: "username", PasswordField: "password"}
	}
	body, login, password, release, err := p.readCredentials(c, v, lr)
	if err != nil {
		return err
	}
	defer release()
	if err := p.guardLogin(c, v, login, password); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	target := *ak.AuthUpstream
	if target.Path == "" || target.Path == "/" {
		target.Path = ak.AuthPath
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return stop(v, decisionForbidden, http.StatusBadGateway, msgBadGateway)
	}
	for k, vals := range r.Header {
		if hopHeader(k) {
			continue
		}
		out.Header[k] = vals
	}
	// The forwarding headers are the gateway's, as for proxied requests.
	proxy.SetForwarding(out.Header, r, origin(v.rt.ips)(r))
	resp, err := loginClient.Do(out)
	if err != nil {
		p.d.Metrics.dependencyError("upstream")
		p.d.Log.Warn("login upstream failed", "err", err)
		return stop(v, decisionForbidden, http.StatusBadGateway, msgBadGateway)
	}
	defer resp.Body.Close()
	var reply map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&reply); err != nil {
		return stop(v, decisionForbidden, http.StatusBadGateway, msgBadGateway)
	}
	if !apikey.Truthy(reply["success"]) {
		p.recordLogin(c, v, login, false)
		// The backend's verdict, relayed: the client's auth failure, counted
		// as an upstream 401 would be (outcome never sees this answer: it is
		// returned as an error).
		rec, _ := p.d.Traffic.(ResponseRecorder)
		p.recordAnswer(c, v, rec, http.StatusUnauthorized)
		return stop(v, decisionUnauthorized, http.StatusUnauthorized, msgBadLogin)
	}
	p.recordLogin(c, v, login, true)
	p.remember(c, v, "login")
	role := ""
	if ak.RoleAttribute != "" {
		if s, ok := reply[ak.RoleAttribute].(string); ok {
			role = s
		}
	}
	key, sess, err := p.d.Keys.MintFor(r.Context(), role, apikey.AccountOf(login), p.d.Now())
	if err != nil {
		p.d.Metrics.dependencyError("redis")
		return stop(v, decisionDegraded, http.StatusServiceUnavailable, msgDegraded)
	}
	v.keyID = sess.ID
	p.publish(c, v, wire.EventKeyIssued, http.StatusOK, login)
	return c.JSON(http.StatusOK, map[string]string{"API_KEY": key})
}

// forward ends the chain: the login endpoint, a guarded login route, or the
// proxy; a WebSocket handshake the proxy forwards becomes a tracked tunnel
// (tunnel).
func (p *pipeline) forward(c echo.Context) error {
	v := verdictOf(c)
	r := c.Request()
	if r.Method == http.MethodTrace || r.Method == http.MethodConnect {
		// TRACE echoes the request (cookies, credentials) back; CONNECT
		// would make the gateway a tunnel.
		return stop(v, decisionForbidden, http.StatusMethodNotAllowed, "Method not allowed")
	}
	if v.login && p.d.Keys != nil {
		return p.login(c)
	}
	if !p.readsBody(v, r) {
		if proxy.WebSocketUpgrade(r) {
			// The one upgrade the proxy forwards (h2c and the rest are
			// dropped there).
			return p.tunnel(c, v, r)
		}
		// The upstream takes the body: it streams, under the route's
		// timeout, and the gateway waits for it no more.
		v.bodyDone = true
		v.rt.proxy.ServeHTTP(c.Response(), r)
		return nil
	}
	lr := v.paths.logins[v.key]
	_, login, password, release, err := p.readCredentials(c, v, lr)
	if err != nil {
		return err
	}
	defer release()
	if err := p.guardLogin(c, v, login, password); err != nil {
		return err
	}
	v.rt.proxy.ServeHTTP(c.Response(), r)
	// The upstream's status is its verdict: 2xx success, 401/403 failure.
	// Anything else (a 5xx, a timeout, a redirect) says nothing about the
	// password and is not counted either way.
	switch status := c.Response().Status; {
	case status >= 200 && status < 300:
		p.recordLogin(c, v, login, true)
		p.remember(c, v, "login")
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		p.recordLogin(c, v, login, false)
	}
	return nil
}

// Check is the pre-auth check (seed 003's SignIn, POST /v1/check): the
// lists first (allow → ok without consuming anything, deny → refused), then
// the login, password and client buckets and lockouts.
func (g *Gateway) Check(ctx context.Context, login, password string, ip netip.Addr) (bool, error) {
	if g.d.Lists != nil {
		switch g.d.Lists.Match(ip) {
		case lists.Allow:
			return true, nil
		case lists.Deny:
			return false, nil
		}
	}
	if g.d.Guard == nil {
		return true, nil
	}
	now := g.d.Now()
	loginLocked, ipLocked, _, err := g.d.Guard.Locked(ctx, login, ip, now)
	if err != nil {
		return false, err
	}
	if loginLocked || ipLocked {
		return false, nil
	}
	return g.d.Guard.Check(ctx, login, password, ip, now)
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length"}

func hopHeader(k string) bool {
	return slices.Contains(hopHeaders, http.CanonicalHeaderKey(k))
}

func ceilSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
