package server

import (
	"context"
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/shared/clientid"
)

// credState is what the credential step found.
type credState uint8

const (
	credNone       credState = iota // no credential the gateway knows
	credKey                         // a valid Bulwark API key
	credJWT                         // a valid JWT (v.principalName)
	credBadKey                      // a key-shaped credential no key matches
	credBadJWT                      // a JWT that failed verification (v.credErr)
	credUnverified                  // Redis could not tell (v.credErr)
)

// credential verifies the credential a request carries, before anything
// is counted: a Bulwark API key (apikey.KeyFrom: KEY, X-API-Key or a
// key-shaped bearer token, looked up in Redis) or, when JWT verification
// is configured, a JWT bearer token (verified locally). A valid one makes
// the request its principal's: v.id becomes the principal's identity
// (clientid.Principal), so its counts, rate limits, score and bans are the
// principal's own, never its address's, and its circumstances (user
// agent, network, country, timing) never count (rules: Features.Principal).
// Its own ban never stops the address's other clients; the address's ban
// is checked first (addressBanned) and refuses it, whatever it shows.
//
// What is refused is decided later, by the route: on a route with auth
// the missing or invalid credential is answered 401 and counted against
// the address (apiKey); on an open route an invalid one is ignored (it
// may be the upstream's own token) and the request is judged by its
// address. Allow-listed clients are verified too (a route with auth still
// needs the credential), though nothing is counted for them. A Bulwark
// key's principal is the account it was minted for (apikey.AccountOf),
// so all of one account's keys share one record. Logins (the key
// minter's path and login_protection's routes) never become principals:
// they are judged by their address.
func (p *pipeline) credential(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		r := c.Request()
		if p.readsBody(v, r) {
			// A login is judged by its address: credential stuffing must
			// not hide behind a key it holds, nor spread itself over many.
			return next(c)
		}
		var key string
		if p.d.Keys != nil {
			key, _ = apikey.KeyFrom(r)
		}
		tok, bearer := apikey.Bearer(r)
		jwt := p.d.JWT != nil && bearer && strings.Count(tok, ".") == 2
		if key == "" && !jwt {
			return next(c)
		}
		now := p.d.Now()
		if !v.bypass {
			// A credential costs a lookup: a banned address is refused
			// before it (and a principal's request from a banned address is
			// refused whatever it shows: seed 000's order).
			if ttl, banned := p.addressBanned(c, v, now); banned {
				return p.refuseBanned(c, v, now, ttl)
			}
		}
		switch {
		case key != "" && apikey.Shaped(key):
			ctx, cancel := context.WithTimeout(r.Context(), v.rt.cfg.Redis.Timeout)
			sess, err := p.d.Keys.Lookup(ctx, key, now)
			cancel()
			switch {
			case err == nil:
				v.cred = credKey
				v.keyID, v.role = sess.ID, sess.Role
				// Every key of one account is one principal: minting a
				// fresh key does not start a fresh record.
				id := sess.ID
				if sess.Account != "" {
					id = "acct:" + sess.Account
				}
				p.becomePrincipal(v, clientid.KindKey, id)
				return next(c)
			case errors.Is(err, apikey.ErrNotFound):
				v.cred = credBadKey
			default:
				v.cred, v.credErr = credUnverified, err
			}
		case key != "":
			v.cred = credBadKey // not a key this gateway mints; a JWT may still verify
		}
		if jwt && v.cred != credUnverified {
			sub, err := p.d.JWT.Verify(tok, now)
			if err == nil && sub != "" {
				v.cred = credJWT
				p.becomePrincipal(v, clientid.KindJWT, sub)
				v.keyID = v.principalName
				return next(c)
			}
			if v.cred == credNone {
				v.cred, v.credErr = credBadJWT, err
			}
		}
		return next(c)
	}
}

// becomePrincipal makes the request its principal's.
func (p *pipeline) becomePrincipal(v *verdict, kind, id string) {
	pid := clientid.Principal(kind, id)
	v.id, v.principalName = pid, clientid.Display(pid)
}
