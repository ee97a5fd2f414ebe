#!/usr/bin/env bash
# build.sh SERVICE OUTDIR — the one way Bulwark's service binaries are built.
#
# deploy/Dockerfile runs exactly this, and so does deploy/compose's build
# test, so "it builds in the test" means "it builds in the image".
#
# It writes into OUTDIR:
#   SERVICE          the service, a static binary (CGO_ENABLED=0)
#   healthcheck      the container health probe (deploy/cmd/healthcheck)
#   demo-city.mmdb   scorer only: the demo GeoIP City database and
#   demo-asn.mmdb    its ASN companion (both from deploy/cmd/geoipgen)
#
# Every module is built with GOWORK=off: that proves each one builds on its
# own from its go.mod (which requires and replaces ../shared and ../web), as
# it must in the image, rather than only inside the workspace.
set -euo pipefail

usage() {
	echo "usage: $0 SERVICE OUTDIR (SERVICE: gateway, scorer, dashboard, shop, simulator)" >&2
	exit 2
}

[[ $# -eq 2 ]] || usage
service=$1
outdir=$2

# service → module directory (relative to the repo root) and main package
# (relative to the module).
case "$service" in
gateway) module=gateway pkg=./cmd/gateway ;;
scorer) module=scorer pkg=./cmd/scorer ;;
dashboard) module=dashboard pkg=./cmd/dashboard ;;
shop) module=deploy pkg=./cmd/shop ;;
simulator) module=deploy pkg=./cmd/simulator ;;
*)
	echo "build.sh: unknown service \"$service\"" >&2
	usage
	;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

gobuild() { # gobuild MODULE_DIR OUTPUT PACKAGE
	(cd "$root/$1" && CGO_ENABLED=0 GOWORK=off go build -trimpath -ldflags='-s -w' -o "$2" "$3")
}

echo "build.sh: $service ($module $pkg) -> $outdir" >&2
gobuild "$module" "$outdir/$service" "$pkg"
gobuild deploy "$outdir/healthcheck" ./cmd/healthcheck

if [[ $service == scorer ]]; then
	(cd "$root/deploy" && GOWORK=off go run ./cmd/geoipgen \
		-out "$outdir/demo-city.mmdb" -asn-out "$outdir/demo-asn.mmdb")
fi
