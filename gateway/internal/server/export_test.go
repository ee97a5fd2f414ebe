package server

// Hooks for the black-box tests.
var (
	NewRequestID     = newRequestID
	ValidID          = validID
	AssetContentType = assetContentType
)
