package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/methodoverride"
)

// checkOverrides applies RBAC to the methods a request's overrides name
// (package methodoverride), after apiKey checked its own method: frameworks
// run a POST with X-HTTP-Method-Override: DELETE, or _method=DELETE, as a
// DELETE. It matters only where the method decides (rolesByMethod); there:
//
//   - Without routes[].method_override, the proxy removes the override
//     headers, and _method in the query or in a POST's form body is
//     refused (400): the upstream would run a method nobody checked.
//   - With it, each method a header, the query or a POST's form body names
//     must be permitted too (403); the upstream picks one, so every one
//     is checked. An override on another method than POST (the frameworks
//     override POST only) or one that names no method is refused (400).
//
// A POST's form body (urlencoded, or multipart) is read whole with
// readBody (body_buffer_size, body_buffer_memory, read_header_timeout) and
// put back for the upstream; release gives its memory back once it has
// been forwarded. Other bodies are never read.
func (p *pipeline) checkOverrides(c echo.Context, v *verdict) (release func(), err error) {
	r := c.Request()
	rules, listed := endpointRules(v.rt.cfg.APIKey.Permissions, v)
	if !listed {
		return noRelease, nil
	}
	opted := v.route.MethodOverride
	var ovs []methodoverride.Override
	if opted {
		ovs = methodoverride.FromHeaders(r.Header)
	}
	ovs = append(ovs, methodoverride.FromQuery(r.URL.RawQuery)...)
	switch {
	case !opted && len(ovs) > 0:
		return noRelease, refuseOverride(v, ovs[0])
	case len(ovs) > 0 && r.Method != http.MethodPost:
		return noRelease, stop(v, decisionForbidden, http.StatusBadRequest,
			fmt.Sprintf("%s (a method override) is refused on %s: only POST may be overridden", ovs[0].Where, r.Method))
	}
	release = noRelease
	if forms := formBody(r); forms != nil {
		if edge := v.rt.cfg.Edge; r.ContentLength > edge.BodyBufferBytes {
			return noRelease, stop(v, decisionTooLarge, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("form body over body_buffer_size (%d bytes): on this route it is read whole for method overrides", edge.BodyBufferBytes))
		}
		body, rel, err := p.readBody(c, v)
		if err != nil {
			return noRelease, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
		found, ferr := forms.read(body)
		switch {
		case !opted && len(found) > 0:
			rel()
			return noRelease, refuseOverride(v, found[0])
		case ferr != nil:
			rel()
			return noRelease, stop(v, decisionForbidden, http.StatusBadRequest,
				fmt.Sprintf("%s (a method override) is in a multipart body that cannot be read unambiguously", found[0].Where))
		}
		ovs = append(ovs, found...)
		release = rel
	}
	for _, o := range ovs {
		if code, msg := judgeOverride(o, rules, v.role); code != 0 {
			release()
			return noRelease, stop(v, decisionForbidden, code, msg)
		}
	}
	return release, nil
}

// judgeOverride answers an override on a route with method_override: 0
// when the role may use its method (or it is empty, which frameworks
// ignore), 400 when it names no method or one that is never forwarded,
// 403 when the role may not use it.
func judgeOverride(o methodoverride.Override, rules map[string][]string, role string) (code int, msg string) {
	switch {
	case o.Method == "":
		return 0, ""
	case !methodoverride.ValidMethod(o.Method):
		return http.StatusBadRequest, o.Where + " (a method override) names no valid method"
	case o.Method == http.MethodTrace || o.Method == http.MethodConnect:
		return http.StatusBadRequest, fmt.Sprintf("%s (a method override) names %s, which is never forwarded", o.Where, o.Method)
	case !slices.Contains(rules[o.Method], role):
		return http.StatusForbidden, msgNotAllowed
	}
	return 0, ""
}

// refuseOverride answers an override on a route without method_override.
func refuseOverride(v *verdict, o methodoverride.Override) error {
	return stop(v, decisionForbidden, http.StatusBadRequest, o.Where+" (a method override) is refused: this route checks roles by method")
}

// rolesByMethod reports whether RBAC decides r by its method: a route with
// auth (api_key while keys are configured, or jwt) and an endpoint
// api_key.permissions lists. Only there are overrides checked and form
// bodies read.
func (p *pipeline) rolesByMethod(v *verdict, r *http.Request) bool {
	switch v.route.Auth {
	case "api_key":
		if p.d.Keys == nil {
			return false
		}
	case "jwt":
	default:
		return false
	}
	_, listed := endpointRules(v.rt.cfg.APIKey.Permissions, v)
	return listed
}

// readsForm reports whether checkOverrides will read r's body whole: a
// POST with a form body where roles are checked by method. bodyLimit must
// not read such a body ahead too.
func (p *pipeline) readsForm(v *verdict, r *http.Request) bool {
	return formBody(r) != nil && p.rolesByMethod(v, r)
}

// forms says how a POST's body is read as a form: urlencoded, multipart
// with the Content-Type naming it, or both when Content-Type headers
// disagree.
type forms struct {
	urlencoded bool
	multipart  string // the Content-Type value, with its boundary
}

// formBody returns how frameworks would read r's body as a form, or nil:
// only a POST's body, as application/x-www-form-urlencoded (also without a
// Content-Type: Rack reads it as a form) or any multipart/* type (Rack
// reads mixed and related too). Media types are compared as Rack does:
// before the first ';' or ',', blanks trimmed, any case; every
// Content-Type header counts.
func formBody(r *http.Request) *forms {
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	cts := r.Header.Values("Content-Type")
	if len(cts) == 0 {
		return &forms{urlencoded: true}
	}
	var f forms
	for _, ct := range cts {
		for _, el := range strings.Split(ct, ",") {
			mt, _, _ := strings.Cut(el, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			switch {
			case mt == "" && strings.TrimSpace(ct) == "", mt == "application/x-www-form-urlencoded":
				f.urlencoded = true
			case strings.HasPrefix(mt, "multipart/"):
				f.multipart = ct
			}
		}
	}
	if !f.urlencoded && f.multipart == "" {
		return nil
	}
	return &f
}

// read returns the overrides in body; an error when a multipart body names
// one it cannot read unambiguously (the overrides are returned anyway).
func (f *forms) read(body []byte) ([]methodoverride.Override, error) {
	var out []methodoverride.Override
	if f.urlencoded {
		out = methodoverride.FromURLEncoded(body)
	}
	if f.multipart != "" {
		mp, err := methodoverride.FromMultipart(body, f.multipart)
		out = append(out, mp...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
