package server

import "net/http"

// Hooks for the black-box tests.
var (
	NewRequestID     = newRequestID
	ValidID          = validID
	AssetContentType = assetContentType
)

// FormBody is formBody: whether r's body is read as a form (ok), as
// urlencoded, and as multipart with which Content-Type.
func FormBody(r *http.Request) (urlencoded bool, multipart string, ok bool) {
	f := formBody(r)
	if f == nil {
		return false, "", false
	}
	return f.urlencoded, f.multipart, true
}
