// Package pathclass sorts a request by its normalised path (lower case, no
// trailing slash; traffic.NormalizePath) into the two classes the traffic
// store counts apart from the rest: page assets and probes.
//
// A page asset is a GET or HEAD of a file a browser fetches for a page (a
// stylesheet, script, image, font or media file), told by the extension of
// the path's last segment only. Never by the client's headers: Sec-Fetch-
// Dest, Referer and Accept are the client's to set, and a scraper that set
// them on /api/products/N would hide from every behavioural feature. The
// trade-off: a client hammering *.png is an asset flood, counted in its
// asset window (the scorer's asset_rate weighs it), never in its burst.
//
// A probe is a request for a well-known exploit, admin or leaked-file path
// of software the upstream does not run (/wp-login.php, /.env,
// /.git/config, ...), like CrowdSec's http-probing and
// http-sensitive-files scenarios. A path that is both is a probe: a
// scanner's /wp-content/plugins/x/js/y.js is not a page asset.
package pathclass

import (
	"fmt"
	"strings"
)

// DefaultAssetExtensions are the page-asset extensions (without the dot).
// Not json, xml, html, php or txt: those are what APIs and pages answer.
var DefaultAssetExtensions = []string{
	"css", "js", "mjs", "map", "wasm",
	"png", "apng", "jpg", "jpeg", "gif", "webp", "avif", "jxl", "svg", "ico", "bmp", "cur",
	"woff", "woff2", "ttf", "otf", "eot",
	"mp4", "m4v", "webm", "mov", "ogv", "mp3", "m4a", "aac", "ogg", "oga", "opus", "flac", "wav", "vtt",
	// streaming: HLS/DASH playlists, refetched every few seconds by a live
	// player (a metronome otherwise), and their segments; the web app
	// manifest browsers ask for
	"m3u8", "mpd", "ts", "m4s", "webmanifest",
}

// DefaultProbePaths is the curated probe list (syntax: ParseProbes). Every
// entry names software or files a site not built on them never serves;
// nothing a normal site serves (/.well-known/, /robots.txt, /sitemap.xml,
// /favicon.ico, /apple-touch-icon*.png, /ads.txt, /security.txt) is on it.
// A site that runs WordPress drops the wp entries, one that runs
// phpMyAdmin drops those, and so on.
var DefaultProbePaths = []string{
	// WordPress
	"/wp-admin", "/wp-login.php", "/wp-includes", "/wp-content", "/wp-json", "/xmlrpc.php",
	"/wp-config.php", "/wp-config.php~", "/wordpress/wp-admin",
	"*/wp-login.php", "*/xmlrpc.php", "*/wlwmanifest.xml",
	// database admin tools
	"/phpmyadmin", "/pma", "/myadmin", "/mysqladmin", "/dbadmin", "/sqladmin", "/adminer.php", "*/adminer.php",
	// editors and file managers with known holes, in whatever directory
	"*/fckeditor/*", "*/ckfinder/*", "*/kcfinder/*", "*/elfinder/*", "*/phpunit/*",
	"*/phpmyadmin/*", "*/wp-admin/*", "*/wp-includes/*", "*/wp-content/*",
	// framework debug pages and dev leftovers
	"/vendor/phpunit", "*/eval-stdin.php", "/_ignition", "/telescope", "/_profiler", "/phpinfo.php", "/info.php",
	"/debug/default/view",
	// leaked files and repositories
	"/.env", "/.env.*", "*/.env", "/.git", "/.git-credentials", "*/.git/*", "*/.svn/*", "/.svn", "/.hg", "/.bzr",
	"/.ds_store", "*/.ds_store", "/.aws", "/.ssh", "/.htaccess", "/.htpasswd", "/.npmrc", "/.dockerenv",
	"/.vscode", "/.idea", "/web.config",
	// backups and dumps, at any path
	"*.sql", "*.sql.gz", "*.sql.zip", "*.bak", "*.old", "*.orig", "*.swp", "*.save",
	"/backup.zip", "/backup.tar.gz", "/db.zip", "/dump.zip", "/site.zip", "/www.zip",
	// servers, appliances and CGI
	"/cgi-bin", "/server-status", "/server-info", "/actuator", "/manager/html", "/host-manager",
	"/jmx-console", "/invoker", "/solr", "/boaform", "/hnap1", "/gponform", "/setup.cgi", "/tmui",
	"/remote/login", "/owa/auth", "/autodiscover/autodiscover.xml", "/jenkins/script", "/druid", "/nacos",
	// web shells
	"/shell.php", "/cmd.php", "/c99.php", "/r57.php", "/wso.php", "/alfa.php",
}

// EntryError is a bad entry of a list: its index and what is wrong.
type EntryError struct {
	Index int
	Msg   string
}

func (e *EntryError) Error() string { return fmt.Sprintf("[%d]: %s", e.Index, e.Msg) }

// Assets is a set of page-asset extensions (lower case, no dot).
type Assets map[string]bool

// ParseAssets builds the set from extensions ("css" or ".css", any case).
// An empty list makes nothing an asset. An entry that is not letters and
// digits is an error naming its index.
func ParseAssets(exts []string) (Assets, error) {
	a := Assets{}
	for i, e := range exts {
		e = strings.ToLower(strings.TrimPrefix(e, "."))
		if e == "" || strings.Trim(e, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return nil, &EntryError{i, fmt.Sprintf("must be an extension of letters and digits (css, .woff2), got %q", exts[i])}
		}
		a[e] = true
	}
	return a, nil
}

// Asset reports whether a request with method for the normalised path is
// a page asset: a GET or HEAD whose last segment's extension is in a.
func (a Assets) Asset(method, path string) bool {
	if len(a) == 0 || method != "GET" && method != "HEAD" {
		return false
	}
	seg := path[strings.LastIndexByte(path, '/')+1:]
	// A segment that also carries a decoded '?' or '#', a '%' or a path
	// parameter is no plain file name: /api/products/1%3F.png may reach an
	// upstream that serves /api/products/1, so it counts as an ordinary
	// request. (The gateway passes paths without their ";parameters"
	// (traffic.NormalizePath): /1.png;x=1 is judged as /1.png, by its
	// extension and then by its answer.)
	if strings.ContainsAny(seg, ";?#%") {
		return false
	}
	dot := strings.LastIndexByte(seg, '.')
	return dot >= 0 && a[seg[dot+1:]]
}

// Probes is a compiled probe list.
type Probes struct {
	prefixes map[string]bool // "/.git": /.git, /.git/config, not /.github
	starts   []string        // "/.env.*": /.env.local, /.env.production
	suffixes [256][]string   // "*.sql", "*/.env": the path ends with it; by last byte
	segments map[string]bool // "*/fckeditor/*": a segment anywhere in the path
}

// ParseProbes compiles a probe list. Entries are matched against the
// normalised path (lower case, no trailing slash), so they are lower-cased
// and their trailing slashes dropped:
//
//   - "/p" is a prefix on a segment boundary: it matches /p and /p/...,
//     not /px (so "/.git" is not "/.github");
//   - "*s" is a suffix of the whole path: "*.sql" matches /dump.sql and
//     /x/db.sql, "*/.env" matches /.env and /api/.env (not /x.env);
//   - "/p*" is a plain prefix: "/.env.*" matches /.env.local and
//     /.env.production;
//   - "*/name/*" is a segment anywhere: "*/fckeditor/*" matches
//     /fckeditor/x, /admin/fckeditor/x and /js/fckeditor (scanners try
//     every directory a copy may sit in), not /fckeditor2.
//
// An entry that is none of these, or is "/" or "*" alone, is an error
// naming its index.
func ParseProbes(entries []string) (*Probes, error) {
	p := &Probes{prefixes: map[string]bool{}, segments: map[string]bool{}}
	for i, e := range entries {
		e = strings.ToLower(e)
		if name, ok := segmentEntry(e); ok {
			p.segments[name] = true
			continue
		}
		for len(e) > 1 && strings.HasSuffix(e, "/") {
			e = e[:len(e)-1]
		}
		switch {
		case len(e) > 2 && e[0] == '/' && strings.IndexByte(e, '*') == len(e)-1:
			p.starts = append(p.starts, e[:len(e)-1])
		case len(e) > 1 && e[0] == '/' && !strings.Contains(e, "*"):
			p.prefixes[e] = true
		case len(e) > 1 && e[0] == '*' && !strings.Contains(e[1:], "*"):
			last := e[len(e)-1]
			p.suffixes[last] = append(p.suffixes[last], e[1:])
		default:
			return nil, &EntryError{i, fmt.Sprintf(`must be a path prefix ("/wp-admin", "/.env.*"), a suffix ("*.sql", "*/.env") or a segment anywhere ("*/fckeditor/*"), got %q`, entries[i])}
		}
	}
	return p, nil
}

// segmentEntry returns name for an entry "*/name/*" (one segment, no
// wildcard in it).
func segmentEntry(e string) (string, bool) {
	name, ok := strings.CutPrefix(e, "*/")
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, "/*")
	if !ok || name == "" || strings.ContainsAny(name, "/*") {
		return "", false
	}
	return name, true
}

// Probe reports whether the normalised path is on the list. It costs one
// map lookup per segment of the path and one comparison per suffix entry
// that ends with the path's last byte.
func (p *Probes) Probe(path string) bool {
	if p == nil {
		return false
	}
	if len(p.prefixes) > 0 {
		for i := 1; i < len(path); i++ {
			if path[i] == '/' && p.prefixes[path[:i]] {
				return true
			}
		}
		if p.prefixes[path] {
			return true
		}
	}
	if path == "" {
		return false
	}
	for _, st := range p.starts {
		if strings.HasPrefix(path, st) {
			return true
		}
	}
	if len(p.segments) > 0 {
		for i := 0; i < len(path); {
			if path[i] == '/' {
				i++
				continue
			}
			end := len(path)
			if j := strings.IndexByte(path[i:], '/'); j >= 0 {
				end = i + j
			}
			if p.segments[path[i:end]] {
				return true
			}
			i = end
		}
	}
	for _, s := range p.suffixes[path[len(path)-1]] {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}
