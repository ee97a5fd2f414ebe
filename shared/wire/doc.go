// Package wire holds the contracts Bulwark's services speak to each other:
// the security Event (MongoDB document and live-stream message), the scorer's
// request and response, and the dashboard's stats frame. It imports only the
// standard library and package clientid (every per-client Redis key is
// built here from a client's identity); field names are the JSON and BSON names on the wire.
package wire
