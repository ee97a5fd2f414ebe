package pathclass_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/pathclass"
)

func TestAssets(t *testing.T) {
	a, err := pathclass.ParseAssets(pathclass.DefaultAssetExtensions)
	require.NoError(t, err)
	for _, p := range []string{"/static/app.css", "/js/app.min.js", "/img/a.b.png", "/favicon.ico", "/apple-touch-icon-precomposed.png", "/fonts/x.woff2", "/v.mp4"} {
		assert.True(t, a.Asset("GET", p), p)
		assert.True(t, a.Asset("HEAD", p), p)
	}
	assert.False(t, a.Asset("POST", "/img/a.png"), "only GET and HEAD")
	for _, p := range []string{"/", "/api/products/12", "/data.json", "/feed.xml", "/index.html", "/index.php", "/robots.txt", "/png", "/img/.png.d/x", "/x.pngx",
		"/api/products/1.png;x=1", "/api/products/1?.png", "/api/products/1#.png", "/api/products/1%2e.png"} {
		assert.False(t, a.Asset("GET", p), p)
	}
	none, err := pathclass.ParseAssets([]string{})
	require.NoError(t, err)
	assert.False(t, none.Asset("GET", "/a.css"), "an empty list: nothing is an asset")
	dot, err := pathclass.ParseAssets([]string{".CSS"})
	require.NoError(t, err)
	assert.True(t, dot.Asset("GET", "/a.css"))

	_, err = pathclass.ParseAssets([]string{"css", "*.js"})
	assert.EqualError(t, err, `[1]: must be an extension of letters and digits (css, .woff2), got "*.js"`)
	_, err = pathclass.ParseAssets([]string{""})
	assert.Error(t, err)
}

func TestProbes(t *testing.T) {
	p, err := pathclass.ParseProbes(pathclass.DefaultProbePaths)
	require.NoError(t, err)
	for _, path := range []string{
		"/wp-admin", "/wp-admin/setup-config.php", "/wp-login.php", "/blog/wp-login.php", "/xmlrpc.php",
		"/wp-content/plugins/revslider/js/x.js", "/wp-includes/wlwmanifest.xml", "/wp-config.php~",
		"/phpmyadmin/index.php", "/pma", "/fckeditor/editor/filemanager/upload/php/upload.php",
		"/vendor/phpunit/phpunit/src/util/php/eval-stdin.php", "/lib/phpunit/util/php/eval-stdin.php",
		"/.env", "/api/.env", "/.git", "/.git/config", "/app/.git/config", "/.ds_store",
		"/dump.sql", "/backup/db.sql.gz", "/index.php.bak", "/config.old", "/cgi-bin/luci",
		"/server-status", "/actuator/env", "/boaform/admin/formlogin", "/hnap1", "/manager/html",
		"/telescope/requests", "/_ignition/execute-solution", "/shell.php", "/.aws/credentials", "/.ssh/id_rsa",
		"/admin/fckeditor/editor/filemanager/upload/test.html", "/js/fckeditor", "/assets/ckfinder/ckfinder.html",
		"/tools/phpmyadmin/index.php", "/blog/wp-admin/install.php", "/site/wp-content/debug.log",
		"/.env.local", "/.env.production", "/.git-credentials", "/app/.git/index", "/x/.svn/entries",
	} {
		assert.True(t, p.Probe(path), path)
	}
	for _, path := range []string{
		"/", "/.well-known/security.txt", "/.well-known/acme-challenge/x", "/robots.txt", "/sitemap.xml",
		"/favicon.ico", "/apple-touch-icon.png", "/apple-touch-icon-precomposed.png", "/ads.txt", "/security.txt",
		"/.github", "/.github/workflows", "/.environment", "/x.env", "/wp-adminx", "/pmax", "/api/login",
		"/api/products/12", "/admin", "/static/app.js", "/blog/sql", "/docs/backup",
		"/fckeditor2/x", "/docs/about-fckeditor", "/my-phpmyadmin-guide",
	} {
		assert.False(t, p.Probe(path), path)
	}

	own, err := pathclass.ParseProbes([]string{"/Secret/", "*.TAR", "*/Old-Admin/*", "/Dump*"})
	require.NoError(t, err)
	assert.True(t, own.Probe("/secret/x"))
	assert.True(t, own.Probe("/a/b.tar"))
	assert.True(t, own.Probe("/x/old-admin"))
	assert.True(t, own.Probe("/old-admin/y"))
	assert.True(t, own.Probe("/dump-2024.tgz"))
	assert.False(t, own.Probe("/wp-login.php"), "the list replaces the default")
	var nilp *pathclass.Probes
	assert.False(t, nilp.Probe("/.env"))

	for i, bad := range []string{"wp-admin", "/", "*", "", "*a*b", "*/a/b/*", "*/*", "/a*b", "/*"} {
		_, err = pathclass.ParseProbes([]string{"/ok", bad})
		assert.ErrorContains(t, err, "[1]: must be a path prefix", i)
	}
}

// BenchmarkClassify is what classifying a request costs on the default
// lists: an API path of four segments.
func BenchmarkClassify(b *testing.B) {
	a, _ := pathclass.ParseAssets(pathclass.DefaultAssetExtensions)
	p, _ := pathclass.ParseProbes(pathclass.DefaultProbePaths)
	for b.Loop() {
		if a.Asset("GET", "/api/v1/products/123") || p.Probe("/api/v1/products/123") {
			b.Fatal("classified")
		}
	}
}
