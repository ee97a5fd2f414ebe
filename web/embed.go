// Package web holds the Bulwark dashboard UI and embeds it into the Go binary.
//
// The UI is an npm project in this directory (Vite + uPlot, sources in src/ and
// index.html). `npm ci && npm run build` writes the bundle to dist/app, which is
// build output and git-ignored. dist/placeholder/index.html is committed, so the
// package always compiles: in a binary built without the bundle, FS serves that
// placeholder page, which tells how to build the UI.
//
// Serve the UI with, for example:
//
//	http.Handle("/", http.FileServerFS(web.FS()))
//
// The page loads its assets by relative URLs, fetches "api/events?limit=50" and
// opens the websocket "ws", both relative to the page, so it can be mounted under
// any path prefix.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

const (
	appDir         = "dist/app"
	placeholderDir = "dist/placeholder"
)

// Built reports whether the binary embeds a built UI (dist/app/index.html).
func Built() bool {
	_, err := fs.Stat(dist, appDir+"/index.html")
	return err == nil
}

// FS returns the UI's files with index.html at the root: the built bundle when
// Built reports true, otherwise a filesystem holding only the placeholder
// index.html.
func FS() fs.FS {
	dir := placeholderDir
	if Built() {
		dir = appDir
	}
	sub, err := fs.Sub(dist, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and both paths are constants.
		panic("web: " + err.Error())
	}
	return sub
}
