package proxy

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
)

// Protocol upgrades (RFC 9110 §7.8). httputil.ReverseProxy forwards any
// Upgrade a client asks for and relays any 101 Switching Protocols the
// upstream answers with; after a 101 the connection is a tunnel whose
// bytes the gateway no longer reads. An upstream that speaks h2c (HTTP/2
// over cleartext, RFC 7540 §3.2) would then take HTTP/2 streams through
// it, for any path, that no protection ever sees. So:
//
//   - the only upgrade forwarded is a WebSocket opening handshake
//     (WebSocketUpgrade) that the caller has checked and tracks, and says
//     so with AllowUpgrade; any other Upgrade (h2c, TLS/1.0, a WebSocket
//     handshake that is not well formed) is dropped, with Connection, and
//     the request is forwarded as a plain request;
//   - HTTP2-Settings, which only ever asks for h2c, is never forwarded,
//     whatever Connection lists;
//   - a 101 is relayed only in answer to such a handshake, and only with
//     the Sec-WebSocket-Accept that proves the upstream read its key (RFC
//     6455 §4.2.2) and Upgrade: websocket; any other 101 is answered 502
//     and the upstream connection closed.
//
// A request without an Upgrade header pays one map lookup for all this.

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// errUnaskedSwitch is why a 101 is not relayed.
var errUnaskedSwitch = errors.New("upstream switched protocols for a request that was not a checked WebSocket handshake")

type upgradeKey struct{}

// AllowUpgrade marks a request whose WebSocket upgrade the caller checked
// (WebSocketUpgrade) and will track once it is a tunnel: only then does the
// proxy forward its Upgrade and relay the upstream's 101.
func AllowUpgrade(ctx context.Context) context.Context {
	return context.WithValue(ctx, upgradeKey{}, true)
}

// WebSocketUpgrade reports whether r is a WebSocket opening handshake the
// gateway forwards (RFC 6455 §4.1), checked no further than needed to
// know that it is one and nothing else:
//
//   - GET, HTTP/1.1, without a body (no Content-Length above 0, no
//     Transfer-Encoding): nothing rides along into the tunnel;
//   - Connection lists the token "upgrade" (any case);
//   - Upgrade is one header line holding the one token "websocket" (any
//     case): no list of protocols for the upstream to pick from;
//   - one Sec-WebSocket-Key that is the base64 of 16 bytes;
//   - one Sec-WebSocket-Version, 13 (the only version).
//
// Sec-WebSocket-Protocol and -Extensions pass as they are; Origin is the
// upstream's to check. A request without Upgrade costs one map lookup.
func WebSocketUpgrade(r *http.Request) bool {
	up, ok := r.Header["Upgrade"]
	if !ok {
		return false
	}
	if len(up) != 1 || !strings.EqualFold(strings.TrimSpace(up[0]), "websocket") ||
		r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) ||
		r.ContentLength > 0 || len(r.TransferEncoding) > 0 ||
		!hasToken(r.Header["Connection"], "upgrade") {
		return false
	}
	key, version := r.Header["Sec-Websocket-Key"], r.Header["Sec-Websocket-Version"]
	if len(key) != 1 || len(version) != 1 || strings.TrimSpace(version[0]) != "13" {
		return false
	}
	k := strings.TrimSpace(key[0])
	if len(k) != 24 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == 16
}

// upgradeAllowed reports whether in's Upgrade is forwarded: the caller
// allowed it and it is a WebSocket handshake.
func upgradeAllowed(in *http.Request) bool {
	allowed, _ := in.Context().Value(upgradeKey{}).(bool)
	return allowed && WebSocketUpgrade(in)
}

// acceptedWebSocket reports whether a 101 answers an allowed WebSocket
// handshake (resp.Request is the request as sent upstream) as RFC 6455
// §4.2.2 spells it: Upgrade: websocket and the Sec-WebSocket-Accept of the
// key sent.
func acceptedWebSocket(resp *http.Response) bool {
	req := resp.Request
	if req == nil || !upgradeAllowed(req) {
		return false
	}
	if !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Upgrade")), "websocket") {
		return false
	}
	return resp.Header.Get("Sec-Websocket-Accept") == acceptKey(strings.TrimSpace(req.Header.Get("Sec-Websocket-Key")))
}

// acceptKey is the Sec-WebSocket-Accept for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// stripUpgrade removes from out, the headers of a request to an upstream
// made from in, what asks for a protocol switch the gateway does not
// allow (see the comment at the top of this file).
func stripUpgrade(out http.Header, in *http.Request) {
	if _, ok := out["Upgrade"]; ok && !upgradeAllowed(in) {
		// ReverseProxy set both for any upgrade the client asked for; the
		// client's own Connection header is gone already.
		delete(out, "Upgrade")
		delete(out, "Connection")
	}
	delete(out, "Http2-Settings")
}

// hasToken reports whether one of the comma-separated lists in values
// holds token, in any case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
