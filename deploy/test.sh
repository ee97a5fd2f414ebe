#!/usr/bin/env bash
# make test: installs what a fresh Debian machine lacks, builds and tests the
# UI, starts a private Redis and MongoDB wire server (the dev stack) on free
# ports, then vets and race-tests every Go module against them. Nothing here
# touches a server it did not start.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CI="${CI:-}"

step() { printf '\n== %s\n' "$*"; }

step "tools"
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing: install Debian's redis-server package" >&2
    exit 1
  fi
fi
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's chromium package (the dashboard's browser test drives it)" >&2
    exit 1
  fi
fi
redis-server --version
go version
node --version
# The dashboard's browser test (deploy/e2e/browser_test.go) runs web/e2e with it.
export BULWARK_TEST_CHROMIUM=$(command -v chromium)
chromium --version 2>/dev/null || true

step "web UI: npm ci, build, unit tests"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent && npm test --silent)

step "mongosh (npm) for the README's query tests"
(cd deploy/mongosh && npm ci --no-audit --no-fund --loglevel=error)
export BULWARK_TEST_MONGOSH=$root/deploy/mongosh/node_modules/.bin/mongosh
"$BULWARK_TEST_MONGOSH" --version

mkdir -p var/geoip var/test var/browser bin
step "demo GeoIP databases"
go run ./deploy/cmd/geoipgen -out var/geoip/demo-city.mmdb -asn-out var/geoip/demo-asn.mmdb
export BULWARK_TEST_GEOIP_DB=$root/var/geoip/demo-city.mmdb
export BULWARK_TEST_GEOIP_ASN_DB=$root/var/geoip/demo-asn.mmdb

step "dev stack: private redis-server and FerretDB on free ports"
. deploy/devstack.sh
start_devstack "$root/var/test"

modules=$(go list -m -f '{{.Dir}}/...')
step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^web/node_modules/') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
step "go vet"
go vet $modules
step "go test -race"
go test -race -count=1 $modules
